"""Read side of the internal API: an owner's conversations and their messages.

Every query is scoped to one owner; another owner's conversation is "not found", never
"forbidden", so ids of other tenants cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass

from application.errors import NotFound
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.repository import Page
from application.ports.unit_of_work import UnitOfWork
from domain.conversation import Conversation
from domain.message import Message


@dataclass(frozen=True, slots=True)
class ConversationsQuery:
    owner_id: str
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class MessagesQuery:
    owner_id: str
    conversation_id: str
    limit: int = 50
    cursor: str | None = None


class ListConversations:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def execute(self, request: ConversationsQuery) -> Page[Conversation]:
        async with self._uow as uow:
            conversations = uow.repository(ConversationRepository)
            return await conversations.list(
                limit=request.limit, cursor=request.cursor, filters={"owner_id": request.owner_id}
            )


class ListConversationMessages:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def execute(self, request: MessagesQuery) -> Page[Message]:
        """Oldest first. Raises ``NotFound`` for an unknown or another owner's conversation."""
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            conversations = uow.repository(ConversationRepository)
            conversation = await conversations.get_by_id(request.conversation_id)
            if conversation is None or conversation.owner_id != request.owner_id:
                raise NotFound(f"no conversation {request.conversation_id}")
            return await messages.list_for_conversation(
                conversation.id, limit=request.limit, cursor=request.cursor
            )
