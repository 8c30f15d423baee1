from __future__ import annotations

from typing import Protocol

from application.ports.repository import Repository
from domain.conversation import Conversation


class ConversationRepository(Repository[Conversation], Protocol):
    async def get_open(self, owner_id: str, contact: str) -> Conversation | None:
        """The open conversation between an owner and a contact, if any (at most one)."""
        ...

    async def add_open_or_get(self, conversation: Conversation) -> Conversation:
        """Insert ``conversation`` unless an open one exists for its owner and contact.

        Returns whichever is stored: concurrent callers end up with the same conversation.
        """
        ...
