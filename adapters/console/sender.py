"""``MessageSender`` that sends nothing: logs each message and keeps the latest ones."""

from __future__ import annotations

import logging
import uuid
from collections import deque

from application.ports.message_sender import OutboundEnvelope, SendReceipt
from domain.message import DeliveryStatus

log = logging.getLogger("adapters.console")


class ConsoleMessageSender:
    """Logs each envelope and answers like a provider that sent it at once.

    The sid has Twilio's shape (``SM`` + 32 hex) so status callbacks and storage treat it
    like a real one. ``sent`` holds the last ``keep`` envelopes, oldest first.
    """

    def __init__(self, *, keep: int = 100) -> None:
        if keep < 0:
            raise ValueError("keep must be >= 0")
        # A bounded buffer: a long-running dev server must not grow without limit.
        self._sent: deque[OutboundEnvelope] = deque(maxlen=keep)

    @property
    def sent(self) -> list[OutboundEnvelope]:
        return list(self._sent)

    async def send(self, envelope: OutboundEnvelope) -> SendReceipt:
        sid = "SM" + uuid.uuid4().hex
        log.info(
            "console send %s from=%s to=%s body=%r media=%s",
            sid,
            envelope.from_address,
            envelope.to_address,
            envelope.body,
            list(envelope.media_urls),
        )
        self._sent.append(envelope)
        return SendReceipt(provider_sid=sid, status=DeliveryStatus.SENT)
