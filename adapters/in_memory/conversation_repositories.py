"""The WhatsApp flow's repository extensions in memory: its own queries and foreign keys."""

from __future__ import annotations

import builtins
import copy
from collections.abc import Collection
from dataclasses import replace
from datetime import datetime
from typing import Any

from adapters.in_memory.repositories import InMemoryRepository
from application.conversation_entities import CONVERSATIONS, ENTITIES, MESSAGES
from application.entities import EntityRegistry, registry
from application.errors import ConcurrencyError, NotFound
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.repository import Page
from domain.conversation import Conversation, ConversationStatus
from domain.errors import DuplicateMessage
from domain.message import DeliveryStatus, Direction, Message


class InMemoryConversationRepository(InMemoryRepository[Conversation]):
    """The WhatsApp flow's conversation queries over the generic repository."""

    def _on_delete(self, entity_id: str) -> None:
        # ON DELETE CASCADE for its messages, then SET NULL for replies pointing at them.
        messages = self._tables().table(MESSAGES.table)
        gone = {m.id for m in messages.values() if m.conversation_id == entity_id}
        for message_id in gone:
            del messages[message_id]
        for other in [m for m in messages.values() if m.reply_to_id in gone]:
            messages[other.id] = replace(other, reply_to_id=None)

    def _find_open(self, owner_id: str, contact: str) -> Conversation | None:
        for c in self._rows().values():
            if c.owner_id == owner_id and c.contact == contact and c.status == "open":
                return c
        return None

    async def get_open(self, owner_id: str, contact: str) -> Conversation | None:
        return self._out(self._find_open(owner_id, contact))

    async def add_open_or_get(self, conversation: Conversation) -> Conversation:
        if conversation.status is not ConversationStatus.OPEN:
            raise ValueError("add_open_or_get takes an open conversation")
        if (
            conversation.id not in self._rows()
            and self._find_open(conversation.owner_id, conversation.contact) is None
        ):
            self._rows()[conversation.id] = self._stored_form(conversation)
        stored = self._find_open(conversation.owner_id, conversation.contact)
        if stored is None:
            raise ConcurrencyError(f"conversation id {conversation.id} is taken by a closed one")
        return copy.deepcopy(stored)


class InMemoryMessageRepository(InMemoryRepository[Message]):
    """The WhatsApp flow's message queries, and its foreign keys, over the generic one."""

    def _check_references(self, entity: Message) -> None:
        missing_reply_target = (
            entity.reply_to_id is not None and entity.reply_to_id not in self._rows()
        )
        conversations = self._tables().table(CONVERSATIONS.table)
        if entity.conversation_id not in conversations or missing_reply_target:
            raise NotFound(f"message {entity.id} refers to a missing conversation or message")

    def _check_constraints(self, entity: Message, replacing: str | None) -> None:
        super()._check_constraints(entity, replacing)
        self._check_references(entity)

    def _on_delete(self, entity_id: str) -> None:
        rows = self._rows()
        for other in [m for m in rows.values() if m.reply_to_id == entity_id]:
            rows[other.id] = replace(other, reply_to_id=None)

    async def add_if_new(self, message: Message) -> bool:
        stored = self._stored_form(message)
        if self._unique_violation(stored, replacing=None) is not None:
            return False
        self._check_references(stored)
        self._rows()[stored.id] = stored
        return True

    async def get_by_provider_sid(self, provider_sid: str) -> Message | None:
        found = [m for m in self._rows().values() if m.provider_sid == provider_sid]
        return self._out(found[0] if found else None)

    async def get_reply_to(self, message_id: str) -> Message | None:
        found = [m for m in self._rows().values() if m.reply_to_id == message_id]
        return self._out(found[0] if found else None)

    async def list_for_conversation(
        self, conversation_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Message]:
        return self._page(lambda m: m.conversation_id == conversation_id, limit, cursor)

    async def latest_for_conversation(
        self, conversation_id: str, limit: int
    ) -> builtins.list[Message]:
        if limit < 1:
            return []
        rows = self._sorted(lambda m: m.conversation_id == conversation_id)
        return [self._copy(m) for m in rows[-limit:]]

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
        current = self._rows().get(message_id)
        if current is None or current.status not in set(expected):
            return False
        changed = replace(
            current,
            status=DeliveryStatus(new),
            updated_at=at,
            version=current.version + 1,
            provider_sid=current.provider_sid if provider_sid is None else provider_sid,
            error_code=current.error_code if error_code is None else error_code,
        )
        stored = self._stored_form(changed)
        if self._unique_violation(stored, replacing=message_id) is not None:
            raise DuplicateMessage(provider_sid or message_id)
        self._rows()[message_id] = stored
        return True

    async def awaiting_reply(
        self, older_than: datetime, limit: int = 100, since: datetime | None = None
    ) -> builtins.list[Message]:
        if limit < 1:
            return []
        if older_than.tzinfo is None or (since is not None and since.tzinfo is None):
            raise ValueError("naive datetime refused: pass an aware datetime")
        replied = {m.reply_to_id for m in self._rows().values() if m.reply_to_id is not None}
        rows = self._sorted(
            lambda m: (
                m.direction is Direction.INBOUND
                and m.created_at < older_than
                and (since is None or m.created_at >= since)
                and m.id not in replied
            )
        )
        return [self._copy(m) for m in rows[:limit]]


RepositoryClass = type[InMemoryRepository[Any]]
# The flow's ports served by its extensions (bootstrap registers them the same way).
EXTENSIONS: dict[type, RepositoryClass] = {
    ConversationRepository: InMemoryConversationRepository,
    MessageRepository: InMemoryMessageRepository,
}
BUILT_IN: EntityRegistry[RepositoryClass] = registry(ENTITIES, InMemoryRepository, EXTENSIONS)
