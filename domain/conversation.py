"""Conversations: one thread between an owner's WhatsApp number and a contact."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

# The holder recorded when the contact asks for a person and no agent has taken it yet.
ANY_AGENT = "unassigned"


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class ClosedReason(enum.StrEnum):
    IDLE = "idle"
    EXPIRED = "expired"
    CONTACT = "contact"  # the contact said a closure keyword


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
    # Handoff: the agent holding the conversation (None: the bot), since and until when.
    holder: str | None = None
    held_since: datetime | None = None
    held_until: datetime | None = None
    # The assistant gave up on a reply (the fallback went out): a person should look.
    needs_person: bool = False
    closed_reason: str | None = None

    def is_stale(self, now: datetime, idle: timedelta, expiration: timedelta) -> bool:
        """An open conversation ends after ``idle`` without messages or ``expiration`` in all."""
        return self.stale_reason(now, idle, expiration) is not None

    def stale_reason(
        self, now: datetime, idle: timedelta, expiration: timedelta
    ) -> ClosedReason | None:
        """Why an open conversation is over at ``now``; expiry wins over idleness."""
        if now - self.created_at >= expiration:
            return ClosedReason.EXPIRED
        if now - self.last_message_at >= idle:
            return ClosedReason.IDLE
        return None

    def touched(self, at: datetime) -> Conversation:
        return replace(self, last_message_at=max(at, self.last_message_at), updated_at=at)

    def closed(self, at: datetime, reason: str | None = None) -> Conversation:
        return replace(self, status=ConversationStatus.CLOSED, updated_at=at,
                       closed_reason=reason)

    def held_by(self, now: datetime) -> str | None:
        """Who holds the conversation at ``now``: an agent id, or None for the bot.

        A handoff past its ``held_until`` has timed out back to the bot, stored or not.
        """
        if self.holder is None or (self.held_until is not None and now >= self.held_until):
            return None
        return self.holder

    def handed_off(self, agent: str, at: datetime, until: datetime | None) -> Conversation:
        return replace(self, holder=agent, held_since=at, held_until=until, updated_at=at)

    def released(self, at: datetime) -> Conversation:
        return replace(self, holder=None, held_since=None, held_until=None,
                       needs_person=False, updated_at=at)

    def flagged_for_person(self, at: datetime) -> Conversation:
        return replace(self, needs_person=True, updated_at=at)


def is_closure_request(body: str, keywords: frozenset[str]) -> bool:
    """True when the whole message is one of the closure keywords (case- and space-insensitive)."""
    return body.strip().casefold() in keywords
