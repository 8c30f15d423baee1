"""A ``MessageSender`` decorator: a span per send and a failure counter by provider code."""

from __future__ import annotations

from opentelemetry.trace import Tracer

from adapters.observability.metrics import Instruments
from application.errors import DeliveryFailed, DeliveryUncertain
from application.ports.message_sender import MessageSender, OutboundEnvelope, SendReceipt


class ObservedMessageSender:
    def __init__(
        self, inner: MessageSender, tracer: Tracer, instruments: Instruments, provider: str
    ) -> None:
        self._inner = inner
        self._tracer = tracer
        self._instruments = instruments
        self._provider = provider

    def __repr__(self) -> str:
        return f"ObservedMessageSender({self._inner!r})"

    async def send(self, envelope: OutboundEnvelope) -> SendReceipt:
        with self._tracer.start_as_current_span(
            f"{self._provider} send", attributes={"wta.provider": self._provider}
        ) as span:
            try:
                receipt = await self._inner.send(envelope)
            except DeliveryFailed as exc:
                self._failed(exc.error_code, "retryable" if exc.retryable else "refused")
                raise
            except DeliveryUncertain:
                self._failed(None, "uncertain")
                raise
            span.set_attribute("wta.provider_sid", receipt.provider_sid)
            return receipt

    def _failed(self, error_code: str | None, kind: str) -> None:
        self._instruments.send_failures.add(
            1, {"provider": self._provider, "error_code": error_code or "none", "kind": kind}
        )
