"""Conversations: one thread between an owner's WhatsApp number and a contact."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(slots=True)
class Conversation:
    id: str
    owner_id: str
    contact: str
    channel: str
    status: ConversationStatus
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime
    version: int = 1

    def is_stale(self, now: datetime, idle: timedelta, expiration: timedelta) -> bool:
        """An open conversation ends after ``idle`` without messages or ``expiration`` in all."""
        return now - self.last_message_at >= idle or now - self.created_at >= expiration

    def touched(self, at: datetime) -> Conversation:
        return replace(self, last_message_at=max(at, self.last_message_at), updated_at=at)

    def closed(self, at: datetime) -> Conversation:
        return replace(self, status=ConversationStatus.CLOSED, updated_at=at)


def is_closure_request(body: str, keywords: frozenset[str]) -> bool:
    """True when the whole message is one of the closure keywords (case- and space-insensitive)."""
    return body.strip().casefold() in keywords
