"""The conversation lifecycle's counters on an OpenTelemetry meter."""

from __future__ import annotations

from opentelemetry.metrics import Meter


class OtelConversationMetrics:
    def __init__(self, meter: Meter) -> None:
        self._closed = meter.create_counter(
            "wta.conversations.closed", unit="{conversation}",
            description="Conversations the lifecycle task closed, by reason")

    def closed(self, reason: str) -> None:
        self._closed.add(1, {"reason": reason})
