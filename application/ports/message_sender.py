from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from domain.message import DeliveryStatus


@dataclass(frozen=True, slots=True)
class OutboundEnvelope:
    owner_id: str
    from_address: str
    to_address: str
    body: str
    media_urls: tuple[str, ...] = field(default_factory=tuple)
    # A Content API template (``HX...``) and its variables; the body is then ignored.
    content_sid: str | None = None
    content_variables: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SendReceipt:
    provider_sid: str
    status: DeliveryStatus


class MessageSender(Protocol):
    """Hands one message to the provider.

    Raises ``DeliveryFailed(retryable=True)`` only when the provider certainly did not take
    the message, ``DeliveryFailed(retryable=False)`` when it refused it for good, and
    ``DeliveryUncertain`` when it cannot tell (a timeout after the request was sent).
    """

    async def send(self, envelope: OutboundEnvelope) -> SendReceipt: ...
