"""The WhatsApp flow's repository extensions over PostgREST (see ``SupabaseUnitOfWork``):
its own queries, and its foreign keys' checks and ON DELETE actions."""

from __future__ import annotations

import asyncio
import builtins
import copy
from collections.abc import Collection
from dataclasses import replace
from datetime import datetime
from typing import Any

from adapters.supabase.base import SupabaseRepository
from adapters.supabase.rows import wire_time
from application.conversation_entities import CONVERSATIONS, ENTITIES, MESSAGES
from application.entities import EntityRegistry, registry
from application.errors import ConcurrencyError, NotFound
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.repository import Condition, Page
from domain.conversation import Conversation, ConversationStatus
from domain.errors import DuplicateMessage
from domain.message import DeliveryStatus, Direction, Message

_OPEN = ConversationStatus.OPEN.value


class SupabaseConversationRepository(SupabaseRepository[Conversation]):
    """The WhatsApp flow's conversation queries over the generic repository."""

    async def _cascade_delete(self, entity_id: str) -> None:
        # ON DELETE CASCADE: the conversation's messages go too (their replies' links are
        # in the same conversation, so SET NULL has nothing left to show).
        pending = self._work().table(MESSAGES.table)
        doomed = await self._message_ids(entity_id)
        doomed |= {
            i for i, m in pending.items() if m is not None and m.conversation_id == entity_id
        }
        for message_id in doomed:
            pending[message_id] = None

    async def _message_ids(self, conversation_id: str) -> set[str]:
        client = await self._connection.postgrest()
        request = client.table("messages").select("id").eq("conversation_id", conversation_id)
        response = await self._connection.execute(request)
        return {row["id"] for row in response.data}

    async def get_open(self, owner_id: str, contact: str) -> Conversation | None:
        return await self._exists(
            Condition("owner_id", "eq", owner_id),
            Condition("contact", "eq", contact),
            Condition("status", "eq", _OPEN),
        )

    async def add_open_or_get(self, conversation: Conversation) -> Conversation:
        if conversation.status is not ConversationStatus.OPEN:
            raise ValueError("add_open_or_get takes an open conversation")
        existing = await self.get_open(conversation.owner_id, conversation.contact)
        if existing is not None:
            return existing
        if await self.get_by_id(conversation.id) is not None:
            raise ConcurrencyError(f"conversation id {conversation.id} is taken by a closed one")
        stored = self._stored(conversation)
        # Insert-or-nothing at commit: a concurrent writer's open conversation fails the unit.
        self._queue("insert_if_new", stored)
        return copy.deepcopy(stored)


class SupabaseMessageRepository(SupabaseRepository[Message]):
    """The WhatsApp flow's message queries, and its foreign keys, over the generic one."""

    async def _check_references(self, entity: Message) -> None:
        conversations = SupabaseRepository(self._connection, self._work, CONVERSATIONS)
        checks: list[Any] = [conversations.get_by_id(entity.conversation_id)]
        if entity.reply_to_id is not None:
            checks.append(self.get_by_id(entity.reply_to_id))
        if any(found is None for found in await asyncio.gather(*checks)):
            raise NotFound(f"message {entity.id} refers to a missing conversation or message")

    async def _check_constraints(self, entity: Message, replacing: str | None) -> None:
        await super()._check_constraints(entity, replacing)
        await self._check_references(entity)

    async def _cascade_delete(self, entity_id: str) -> None:
        # ON DELETE SET NULL on the reply that pointed at the deleted message.
        reply = await self.get_reply_to(entity_id)
        if reply is not None:
            self._pending()[reply.id] = replace(reply, reply_to_id=None)

    async def add_if_new(self, message: Message) -> bool:
        stored = self._stored(message)
        if await self._unique_violation(stored, replacing=None) is not None:
            return False
        await self._check_references(stored)
        # Insert-or-nothing at commit: if a concurrent writer took the key meanwhile, the
        # commit fails with ConcurrencyError and the caller retries into the duplicate path.
        self._queue("insert_if_new", stored)
        return True

    async def get_by_provider_sid(self, provider_sid: str) -> Message | None:
        return await self._exists(Condition("provider_sid", "eq", provider_sid))

    async def get_reply_to(self, message_id: str) -> Message | None:
        return await self._exists(Condition("reply_to_id", "eq", message_id))

    async def list_for_conversation(
        self, conversation_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Message]:
        return await self._page([Condition("conversation_id", "eq", conversation_id)], limit,
                                cursor)

    async def latest_for_conversation(
        self, conversation_id: str, limit: int
    ) -> builtins.list[Message]:
        if limit < 1:
            return []
        newest_first = await self._fetch(
            [Condition("conversation_id", "eq", conversation_id)], limit=limit, descending=True
        )
        return newest_first[::-1]

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
        wanted = [DeliveryStatus(s).value for s in expected]
        current = await self.get_by_id(message_id)
        if current is None or current.status.value not in wanted:
            return False
        changed = replace(
            current,
            status=DeliveryStatus(new),
            updated_at=at,
            version=current.version + 1,
            provider_sid=current.provider_sid if provider_sid is None else provider_sid,
            error_code=current.error_code if error_code is None else error_code,
        )
        stored = self._stored(changed)
        if provider_sid is not None and await self._unique_violation(stored, message_id):
            raise DuplicateMessage(provider_sid)
        changes: dict[str, Any] = {"status": stored.status.value, "updated_at": wire_time(at)}
        if provider_sid is not None:
            changes["provider_sid"] = provider_sid
        if error_code is not None:
            changes["error_code"] = error_code
        # Checked again in SQL at commit (status still one of ``expected``), so two units
        # that both saw the old status cannot both win.
        op = {
            "kind": "update_where", "table": self.table, "id": message_id,
            "column": "status", "expected": wanted, "changes": changes,
        }
        self._work().record(op, self.table, message_id, stored)
        return True

    async def awaiting_reply(
        self, older_than: datetime, limit: int = 100, since: datetime | None = None
    ) -> builtins.list[Message]:
        if limit < 1:
            return []
        cutoff = wire_time(older_than)
        pending = self._pending()
        client = await self._connection.postgrest()
        # Replies this unit changed are judged from its own rows, not the server's.
        params: dict[str, Any] = {"older_than": cutoff, "max_rows": limit + 2 * len(pending),
                  "ignored_reply_ids": sorted(pending)}
        if since is not None:
            params["newer_than"] = wire_time(since)  # migration 0008's argument
        rpc = client.rpc("wta_awaiting_reply", params)
        response = await self._connection.execute(rpc)
        server = [self._from_row(row) for row in response.data if row["id"] not in pending]
        mine = [
            copy.deepcopy(m) for m in pending.values()
            if m is not None and m.direction is Direction.INBOUND and m.created_at < older_than
            and (since is None or m.created_at >= since)
        ]
        if mine:
            answered = await self._fetch([Condition("reply_to_id", "in", [m.id for m in mine])])
            replied = {m.reply_to_id for m in answered}
            mine = [m for m in mine if m.id not in replied]
        replied_here = {m.reply_to_id for m in pending.values() if m is not None}
        waiting = [m for m in server + mine if m.id not in replied_here]
        return sorted(waiting, key=lambda m: m.id)[:limit]


RepositoryClass = type[SupabaseRepository[Any]]
# The flow's ports served by its extensions (bootstrap registers them the same way).
EXTENSIONS: dict[type, RepositoryClass] = {
    ConversationRepository: SupabaseConversationRepository,
    MessageRepository: SupabaseMessageRepository,
}
BUILT_IN: EntityRegistry[RepositoryClass] = registry(ENTITIES, SupabaseRepository, EXTENSIONS)
