"""The WhatsApp flow's repository extensions in raw SQL, bound to one unit's session."""

from __future__ import annotations

import builtins
from collections.abc import Collection
from datetime import datetime
from typing import Any

import psycopg2
from psycopg2 import sql

from adapters.psycopg.base import PsycopgRepository
from adapters.psycopg.statements import conditions, plain
from application.conversation_entities import ENTITIES
from application.entities import EntityRegistry, registry
from application.errors import ConcurrencyError
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.repository import Condition, Page
from domain.conversation import Conversation, ConversationStatus
from domain.errors import DuplicateMessage
from domain.message import DeliveryStatus, Direction, Message


class PsycopgConversationRepository(PsycopgRepository[Conversation]):
    """The WhatsApp flow's conversation queries over the generic repository."""

    async def get_open(self, owner_id: str, contact: str) -> Conversation | None:
        statement = self._cached("open", lambda: sql.SQL(
            "{} WHERE {} = %s AND {} = %s AND {} = %s").format(
            self._select(), *map(sql.Identifier, ("owner_id", "contact", "status"))))
        return await self._one(statement, [owner_id, contact, ConversationStatus.OPEN.value])

    async def add_open_or_get(self, conversation: Conversation) -> Conversation:
        if conversation.status is not ConversationStatus.OPEN:
            raise ValueError("add_open_or_get takes an open conversation")
        # The partial unique index decides who wins; the loser reads the winner's row.
        await self._write(self._insert_statement(on_conflict_nothing=True),
                          self._to_row(conversation), returning=True)
        stored = await self.get_open(conversation.owner_id, conversation.contact)
        if stored is None:
            raise ConcurrencyError(f"conversation id {conversation.id} is taken by a closed one")
        return stored


class PsycopgMessageRepository(PsycopgRepository[Message]):
    """The WhatsApp flow's message queries over the generic repository."""

    async def add_if_new(self, message: Message) -> bool:
        _, returned = await self._write(self._insert_statement(on_conflict_nothing=True),
                                        self._to_row(message), returning=True)
        return bool(returned)

    async def get_by_provider_sid(self, provider_sid: str) -> Message | None:
        statement = self._cached("by_sid", lambda: sql.SQL("{} WHERE {} = %s").format(
            self._select(), sql.Identifier("provider_sid")))
        return await self._one(statement, [provider_sid])

    async def get_reply_to(self, message_id: str) -> Message | None:
        statement = self._cached("reply_to", lambda: sql.SQL("{} WHERE {} = %s").format(
            self._select(), sql.Identifier("reply_to_id")))
        return await self._one(statement, [message_id])

    async def list_for_conversation(
        self, conversation_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Message]:
        where = conditions([Condition("conversation_id", "eq", conversation_id)])
        return await self._page(where, limit, cursor)

    async def latest_for_conversation(
        self, conversation_id: str, limit: int
    ) -> builtins.list[Message]:
        if limit < 1:
            return []
        statement = self._cached("latest", lambda: sql.SQL(
            "{} WHERE {} = %s ORDER BY {} DESC LIMIT %s").format(
            self._select(), sql.Identifier("conversation_id"), sql.Identifier("id")))
        newest_first = await self._many(statement, [conversation_id, limit])
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
        if not expected:
            return False
        changes: dict[str, Any] = {"status": DeliveryStatus(new).value, "updated_at": plain(at)}
        if provider_sid is not None:
            changes["provider_sid"] = provider_sid
        if error_code is not None:
            changes["error_code"] = error_code
        assignments = [sql.SQL("{} = %s").format(sql.Identifier(n)) for n in changes]
        version = sql.Identifier("version")
        # The check and the write are one statement: racing callers cannot both pass.
        statement = sql.SQL("UPDATE {} SET {}, {} = {} + 1 WHERE {} = %s AND {} = ANY(%s)").format(
            self._name(), sql.SQL(", ").join(assignments), version, version,
            sql.Identifier("id"), sql.Identifier("status"))
        params = [*changes.values(), message_id, [DeliveryStatus(s).value for s in expected]]
        try:
            count, _ = await self._session.write(statement, params)
        except psycopg2.IntegrityError as error:
            raise DuplicateMessage(provider_sid or message_id) from error
        return count == 1

    async def awaiting_reply(
        self, older_than: datetime, limit: int = 100, since: datetime | None = None
    ) -> builtins.list[Message]:
        if limit < 1:
            return []
        where = conditions([
            Condition("direction", "eq", Direction.INBOUND.value),
            Condition("created_at", "lt", older_than),
            *([] if since is None else [Condition("created_at", "gte", since)]),
        ])
        statement = self._cached(f"awaiting[{where.shape}]", lambda: sql.SQL(
            "{select} WHERE {where} AND NOT EXISTS "
            "(SELECT 1 FROM {table} AS reply WHERE reply.{reply_to} = {table}.{id}) "
            "ORDER BY {id} LIMIT %s"
        ).format(select=self._select(), where=where.clause, table=self._name(),
                 reply_to=sql.Identifier("reply_to_id"), id=sql.Identifier("id")))
        return await self._many(statement, [*where.params, limit])


RepositoryClass = type[PsycopgRepository[Any]]
# The flow's ports served by its extensions (bootstrap registers them the same way).
EXTENSIONS: dict[type, RepositoryClass] = {
    ConversationRepository: PsycopgConversationRepository,
    MessageRepository: PsycopgMessageRepository,
}
BUILT_IN: EntityRegistry[RepositoryClass] = registry(ENTITIES, PsycopgRepository, EXTENSIONS)
