from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from application.ports.repository import Page, Repository
from domain.message import DeliveryStatus, Message


class MessageRepository(Repository[Message], Protocol):
    async def add_if_new(self, message: Message) -> bool:
        """Insert-or-nothing on the unique keys (``provider_sid``, ``reply_to_id``).

        Returns False, writing nothing, when another row already holds one of them. Safe
        under concurrent callers: the database's uniqueness decides, not a prior read.
        """
        ...

    async def get_by_provider_sid(self, provider_sid: str) -> Message | None: ...

    async def get_reply_to(self, message_id: str) -> Message | None:
        """The outbound reply to an inbound message, if one was stored."""
        ...

    async def list_for_conversation(
        self, conversation_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Message]:
        """Messages of one conversation, oldest first."""
        ...

    async def latest_for_conversation(self, conversation_id: str, limit: int) -> list[Message]:
        """The newest ``limit`` messages of a conversation, returned oldest first."""
        ...

    async def compare_and_set_status(
        self,
        message_id: str,
        expected: Collection[DeliveryStatus],
        new: DeliveryStatus,
        at: datetime,
        *,
        provider_sid: str | None = None,
        error_code: str | None = None,
    ) -> bool:
        """Set ``new`` only if the stored status is one of ``expected``; True if written.

        One conditional write, so two racing updates cannot both pass the check.
        """
        ...

    async def awaiting_reply(self, older_than: datetime, limit: int = 100,
                             since: datetime | None = None) -> list[Message]:
        """Inbound messages created before ``older_than`` (and at or after ``since``, when
        given) that have no stored reply yet, oldest first.

        ``since`` bounds the read to recent messages (an index serves it); without it the
        whole history of inbound messages is read, which grows without end.
        """
        ...
