"""Messages and their delivery status."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from domain.errors import InvalidStatusTransition


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MessageType(enum.StrEnum):
    TEXT = "text"
    MEDIA = "media"
    LOCATION = "location"
    INTERACTIVE = "interactive"


class DeliveryStatus(enum.StrEnum):
    """Twilio's message statuses plus ``pending`` (stored here, not yet handed to Twilio)."""

    PENDING = "pending"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    CANCELED = "canceled"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def is_failure(self) -> bool:
        return self in FAILURES

    @property
    def is_final(self) -> bool:
        return self in FAILURES or self in (DeliveryStatus.READ, DeliveryStatus.RECEIVED)

    def can_become(self, new: DeliveryStatus) -> bool:
        """Status only moves forward. Failures end a message that was never delivered.

        Twilio callbacks arrive out of order (``sent`` after ``delivered`` is common), so a
        backwards move is not an error to report, only an update to skip.
        """
        if new.is_failure:
            return not self.is_final and self.rank < DeliveryStatus.DELIVERED.rank
        return not self.is_final and new.rank > self.rank

    def predecessors(self) -> frozenset[DeliveryStatus]:
        """Every status that may move to this one (used for race-free conditional updates)."""
        return frozenset(s for s in DeliveryStatus if s.can_become(self))


TRANSCRIPT = "transcript"

FAILURES = frozenset({DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED, DeliveryStatus.CANCELED})

_RANK = {
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.RECEIVED: 0,
    DeliveryStatus.ACCEPTED: 1,
    DeliveryStatus.SCHEDULED: 1,
    DeliveryStatus.QUEUED: 2,
    DeliveryStatus.SENDING: 3,
    DeliveryStatus.SENT: 4,
    DeliveryStatus.DELIVERED: 5,
    DeliveryStatus.READ: 6,
    DeliveryStatus.FAILED: 7,
    DeliveryStatus.UNDELIVERED: 7,
    DeliveryStatus.CANCELED: 7,
}


@dataclass(slots=True)
class Message:
    """One WhatsApp message, either direction.

    ``provider_sid`` is Twilio's ``MessageSid``: set on arrival for inbound messages, once
    Twilio accepted the send for outbound ones. ``reply_to_id`` links an outbound reply to
    the inbound message it answers; at most one reply per inbound message exists.
    """

    id: str
    conversation_id: str
    owner_id: str
    direction: Direction
    type: MessageType
    body: str
    from_address: str
    to_address: str
    status: DeliveryStatus
    created_at: datetime
    updated_at: datetime
    provider_sid: str | None = None
    reply_to_id: str | None = None
    error_code: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    version: int = 1

    @property
    def said(self) -> str:
        """What the message says: its text, then the transcript of its voice note if any.

        A voice note arrives with an empty body; ``metadata["transcript"]`` is recorded by
        the transcription task before the reply is generated.
        """
        transcript = self.metadata.get(TRANSCRIPT)
        if not isinstance(transcript, str) or not transcript.strip():
            return self.body
        return f"{self.body}\n{transcript}" if self.body.strip() else transcript

    def reply(
        self, reply_id: str, body: str, at: datetime, *,
        status: DeliveryStatus = DeliveryStatus.PENDING,
        type: MessageType = MessageType.TEXT, metadata: dict[str, Any] | None = None,
    ) -> Message:
        """THE reply to this inbound message: same conversation, addresses swapped."""
        return Message(
            id=reply_id, conversation_id=self.conversation_id, owner_id=self.owner_id,
            direction=Direction.OUTBOUND, type=type, body=body,
            from_address=self.to_address, to_address=self.from_address, status=status,
            created_at=at, updated_at=at, reply_to_id=self.id, metadata=metadata or {},
        )

    def with_status(
        self, new: DeliveryStatus, at: datetime, error_code: str | None = None
    ) -> Message:
        """A copy moved to ``new``; raises if the move would go backwards."""
        if not self.status.can_become(new):
            raise InvalidStatusTransition(f"{self.status} cannot become {new}")
        return replace(self, status=new, updated_at=at, error_code=error_code or self.error_code)
