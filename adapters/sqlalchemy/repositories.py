"""The WhatsApp flow's repository extensions over SQLAlchemy, bound to one session."""

from __future__ import annotations

import builtins
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, literal_column, select, update

from adapters.sqlalchemy.base import SqlaRepository, cached_statement
from adapters.sqlalchemy.prepared import reusable
from adapters.sqlalchemy.tables import conversations, messages
from application.conversation_entities import ENTITIES
from application.entities import EntityRegistry, registry
from application.errors import ConcurrencyError
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.repository import Condition, Page
from domain.conversation import Conversation, ConversationStatus
from domain.message import DeliveryStatus, Direction, Message


class SqlaConversationRepository(SqlaRepository[Conversation]):
    """The WhatsApp flow's conversation queries over the generic repository."""

    # Built once: a statement object keeps its cache key, so each call skips building and
    # hashing a new one (most of SQLAlchemy's cost per statement on a local database).
    # 'open' is written into the SQL, not bound: SQLite matches the partial unique index
    # (WHERE status = 'open') with a bound value too, but then prepares the statement anew
    # on every run (46 µs against 14 µs here).
    _get_open = reusable(select(conversations).where(
        conversations.c.owner_id == bindparam("p_owner"),
        conversations.c.contact == bindparam("p_contact"),
        conversations.c.status == literal_column(f"'{ConversationStatus.OPEN.value}'"),
    ))

    async def get_open(self, owner_id: str, contact: str) -> Conversation | None:
        return await self._one_of(self._get_open, {"p_owner": owner_id, "p_contact": contact})

    async def add_open_or_get(self, conversation: Conversation) -> Conversation:
        if conversation.status is not ConversationStatus.OPEN:
            raise ValueError("add_open_or_get takes an open conversation")
        values = self._to_row(conversation)
        # The partial unique index decides who wins; the loser reads the winner's row.
        await self._write(self._insert_or_nothing(), values, values)
        stored = await self.get_open(conversation.owner_id, conversation.contact)
        if stored is None:
            raise ConcurrencyError(f"conversation id {conversation.id} is taken by a closed one")
        if stored.id == conversation.id:
            self._wrote(stored)  # this unit's insert: forgotten if it does not commit
        return stored


class SqlaMessageRepository(SqlaRepository[Message]):
    """The WhatsApp flow's message queries over the generic repository."""

    async def add_if_new(self, message: Message) -> bool:
        values = self._to_row(message)
        result = await self._write(self._insert_or_nothing(), values, values)
        if result.scalar_one_or_none() is None:
            return False
        self._wrote(message)
        return True

    _by_provider_sid = reusable(
        select(messages).where(messages.c.provider_sid == bindparam("p_sid")))
    _by_reply_to = reusable(select(messages).where(messages.c.reply_to_id == bindparam("p_id")))

    async def get_by_provider_sid(self, provider_sid: str) -> Message | None:
        return await self._one_of(self._by_provider_sid, {"p_sid": provider_sid})

    async def get_reply_to(self, message_id: str) -> Message | None:
        return await self._one_of(self._by_reply_to, {"p_id": message_id})

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
        c = self.table.c
        stmt = cached_statement((self.table.name, f"latest {limit}"), lambda: select(
            self.table).where(c.conversation_id == bindparam("p_id")).order_by(c.id.desc())
            .limit(limit))
        result = await self._execute(stmt, {"p_id": conversation_id})
        return [self._from_row(row) for row in result.mappings().all()][::-1]

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
        statuses = sorted({DeliveryStatus(s).value for s in expected})
        also = {name: value for name, value in (("provider_sid", provider_sid),
                                                ("error_code", error_code)) if value is not None}
        c = self.table.c

        def build() -> Any:
            # The check and the write are one statement: racing callers cannot both pass.
            values: dict[str, Any] = {"status": bindparam("v_status"),
                                      "updated_at": bindparam("v_updated_at"),
                                      "version": c.version + 1}
            values.update({name: bindparam(f"v_{name}") for name in also})
            return update(self.table).where(
                c.id == bindparam("p_id"),
                c.status.in_([bindparam(f"p_status{n}") for n in range(len(statuses))]),
            ).values(values)

        stmt = cached_statement(
            (self.table.name, f"set status {len(statuses)} {' '.join(also)}"), build)
        params: dict[str, Any] = {"p_id": message_id, "v_status": DeliveryStatus(new).value,
                                  "v_updated_at": at}
        params.update({f"v_{name}": value for name, value in also.items()})
        params.update({f"p_status{n}": status for n, status in enumerate(statuses)})
        result = await self._write(stmt, {"id": message_id, "provider_sid": provider_sid},
                                   params)
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    async def awaiting_reply(
        self, older_than: datetime, limit: int = 100, since: datetime | None = None
    ) -> builtins.list[Message]:
        if limit < 1:
            return []
        c = self.table.c
        reply = self.table.alias("reply")
        has_reply = exists().where(reply.c.reply_to_id == c.id)
        recent = [] if since is None else [c.created_at >= since]
        stmt = (
            select(self.table)
            .where(
                c.direction == Direction.INBOUND.value,
                c.created_at < older_than,
                *recent,
                ~has_reply,
            )
            .order_by(c.id)
            .limit(limit)
        )
        return await self._many(stmt)


RepositoryClass = type[SqlaRepository[Any]]
# The flow's ports served by its extensions (bootstrap registers them the same way).
EXTENSIONS: dict[type, RepositoryClass] = {
    ConversationRepository: SqlaConversationRepository,
    MessageRepository: SqlaMessageRepository,
}
BUILT_IN: EntityRegistry[RepositoryClass] = registry(ENTITIES, SqlaRepository, EXTENSIONS)
