"""Repositories over SQLAlchemy Core tables, bound to one session (one unit of work)."""

from __future__ import annotations

import base64
import binascii
import builtins
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Executable,
    Result,
    Table,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy import insert as generic_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.engine import translate_errors
from adapters.sqlalchemy.tables import conversations, messages
from application.errors import ConcurrencyError, InvalidQuery, NotFound
from application.ports.repository import Page
from domain.conversation import Conversation, ConversationStatus
from domain.errors import DuplicateMessage
from domain.message import DeliveryStatus, Direction, Message, MessageType

E = TypeVar("E", Conversation, Message)

_UNIQUE_SQLITE_ERRORS = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}
_UNIQUE_SQLSTATE = "23505"


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        # validate=True: the lenient default would silently drop foreign characters.
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
        return raw.decode("ascii")
    except (binascii.Error, UnicodeError, ValueError) as error:
        raise InvalidQuery(f"malformed cursor {cursor!r}") from error


def is_unique_violation(error: IntegrityError) -> bool:
    """Unique/primary key violation, as opposed to a foreign key or NOT NULL one."""
    orig = error.orig
    sqlite_name = getattr(orig, "sqlite_errorname", None)
    if sqlite_name:
        return sqlite_name in _UNIQUE_SQLITE_ERRORS
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate:
        return str(sqlstate) == _UNIQUE_SQLSTATE
    return "unique" in str(orig).lower()


class SqlaRepository(Generic[E]):
    """The generic CRUD part of every repository; subclasses map rows to entities."""

    table: ClassVar[Table]
    # Columns whose equality is not meaningful across backends (JSON), never filterable.
    unfilterable: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # -- hooks ------------------------------------------------------------------------
    def _to_row(self, entity: E) -> dict[str, Any]:
        raise NotImplementedError

    def _from_row(self, row: RowMapping) -> E:
        raise NotImplementedError

    def _integrity_error(self, error: IntegrityError, values: Mapping[str, Any]) -> Exception:
        """The application error for a constraint violation while writing ``values``."""
        raise NotImplementedError

    # -- port methods -----------------------------------------------------------------
    async def create(self, entity: E) -> E:
        values = self._to_row(entity)
        await self._write(generic_insert(self.table).values(values), values)
        return entity

    async def get_by_id(self, entity_id: str) -> E | None:
        return await self._one(self.table.c.id == entity_id)

    async def update(self, entity: E) -> E:
        values = self._to_row(entity)
        values["version"] = entity.version + 1
        c = self.table.c
        stmt = (
            update(self.table)
            .where(c.id == entity.id, c.version == entity.version)
            .values({k: v for k, v in values.items() if k != "id"})
        )
        result = await self._write(stmt, values)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrencyError(
                f"{self.table.name} {entity.id} is not at version {entity.version} (or is gone)"
            )
        return replace(entity, version=entity.version + 1)

    async def delete(self, entity_id: str) -> bool:
        result = await self._execute(delete(self.table).where(self.table.c.id == entity_id))
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    async def find_by(self, **filters: object) -> builtins.list[E]:
        conditions = self._conditions(filters)
        return await self._many(select(self.table).where(*conditions).order_by(self.table.c.id))

    async def count(self, filters: Mapping[str, object] | None = None) -> int:
        conditions = self._conditions(filters or {})
        stmt = select(func.count()).select_from(self.table).where(*conditions)
        return int((await self._execute(stmt)).scalar_one())

    async def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        filters: Mapping[str, object] | None = None,
    ) -> Page[E]:
        return await self._page(self._conditions(filters or {}), limit, cursor)

    # -- shared helpers ---------------------------------------------------------------
    def _conditions(self, filters: Mapping[str, object]) -> builtins.list[ColumnElement[bool]]:
        # Validate every name before building anything: filter keys may come from callers.
        allowed = {c.name for c in self.table.columns} - self.unfilterable
        unknown = sorted(str(name) for name in filters if name not in allowed)
        if unknown:
            names = ", ".join(map(repr, unknown))
            raise InvalidQuery(f"cannot filter {self.table.name} by {names}")
        return [
            self.table.c[name].is_(None) if value is None else self.table.c[name] == value
            for name, value in filters.items()
        ]

    async def _page(
        self, conditions: Iterable[ColumnElement[bool]], limit: int, cursor: str | None
    ) -> Page[E]:
        if limit < 1:
            raise InvalidQuery(f"limit must be at least 1, got {limit}")
        where = list(conditions)
        if cursor is not None:
            where.append(self.table.c.id > decode_cursor(cursor))
        # One extra row tells whether another page exists without a second query.
        stmt = select(self.table).where(*where).order_by(self.table.c.id)
        items = await self._many(stmt.limit(limit + 1))
        if len(items) > limit:
            return Page(items[:limit], encode_cursor(items[limit - 1].id))
        return Page(items, None)

    async def _one(self, *conditions: ColumnElement[bool]) -> E | None:
        result = await self._execute(select(self.table).where(*conditions))
        row = result.mappings().one_or_none()
        return None if row is None else self._from_row(row)

    async def _many(self, stmt: Executable) -> builtins.list[E]:
        result = await self._execute(stmt)
        return [self._from_row(row) for row in result.mappings().all()]

    async def _execute(self, stmt: Executable) -> Result[Any]:
        with translate_errors():
            return await self._session.execute(stmt)

    async def _write(self, stmt: Executable, values: Mapping[str, Any]) -> Result[Any]:
        """Execute a write in a savepoint so a constraint violation leaves the unit usable
        (Postgres aborts the whole transaction on a failed statement otherwise)."""
        try:
            with translate_errors():
                async with self._session.begin_nested():
                    return await self._session.execute(stmt)
        except IntegrityError as error:
            raise self._integrity_error(error, values) from error

    def _insert_or_nothing(self, values: Mapping[str, Any]) -> Executable:
        """INSERT ... ON CONFLICT DO NOTHING RETURNING id, in the engine's own dialect."""
        dialect = self._session.get_bind().dialect.name
        insert: Callable[[Table], Any]
        if dialect == "sqlite":
            insert = sqlite.insert
        elif dialect == "postgresql":
            insert = postgresql.insert
        else:
            raise NotImplementedError(f"insert-or-nothing is not implemented for {dialect}")
        return (
            insert(self.table)
            .values(dict(values))
            .on_conflict_do_nothing()
            .returning(self.table.c.id)
        )


class SqlaConversationRepository(SqlaRepository[Conversation]):
    table = conversations

    def _to_row(self, entity: Conversation) -> dict[str, Any]:
        return {
            "id": entity.id,
            "owner_id": entity.owner_id,
            "contact": entity.contact,
            "channel": entity.channel,
            "status": ConversationStatus(entity.status).value,
            "created_at": entity.created_at,
            "updated_at": entity.updated_at,
            "last_message_at": entity.last_message_at,
            "version": entity.version,
        }

    def _from_row(self, row: RowMapping) -> Conversation:
        return Conversation(
            id=row["id"],
            owner_id=row["owner_id"],
            contact=row["contact"],
            channel=row["channel"],
            status=ConversationStatus(row["status"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            last_message_at=row["last_message_at"],
            version=row["version"],
        )

    def _integrity_error(self, error: IntegrityError, values: Mapping[str, Any]) -> Exception:
        # No domain error exists for this; the caller lost a race for the id or the slot of
        # the one open conversation, which is what ConcurrencyError means to use cases.
        return ConcurrencyError(
            f"conversation {values.get('id')} conflicts with a stored one "
            "(same id, or an open conversation for this owner and contact exists)"
        )

    async def get_open(self, owner_id: str, contact: str) -> Conversation | None:
        c = self.table.c
        return await self._one(
            c.owner_id == owner_id, c.contact == contact, c.status == ConversationStatus.OPEN.value
        )

    async def add_open_or_get(self, conversation: Conversation) -> Conversation:
        if conversation.status is not ConversationStatus.OPEN:
            raise ValueError("add_open_or_get takes an open conversation")
        values = self._to_row(conversation)
        # The partial unique index decides who wins; the loser reads the winner's row.
        await self._write(self._insert_or_nothing(values), values)
        stored = await self.get_open(conversation.owner_id, conversation.contact)
        if stored is None:
            raise ConcurrencyError(f"conversation id {conversation.id} is taken by a closed one")
        return stored


class SqlaMessageRepository(SqlaRepository[Message]):
    table = messages
    unfilterable = frozenset({"metadata"})

    def _to_row(self, entity: Message) -> dict[str, Any]:
        return {
            "id": entity.id,
            "conversation_id": entity.conversation_id,
            "owner_id": entity.owner_id,
            "direction": Direction(entity.direction).value,
            "type": MessageType(entity.type).value,
            "body": entity.body,
            "from_address": entity.from_address,
            "to_address": entity.to_address,
            "status": DeliveryStatus(entity.status).value,
            "provider_sid": entity.provider_sid,
            "reply_to_id": entity.reply_to_id,
            "error_code": entity.error_code,
            "metadata": entity.metadata,
            "created_at": entity.created_at,
            "updated_at": entity.updated_at,
            "version": entity.version,
        }

    def _from_row(self, row: RowMapping) -> Message:
        return Message(
            id=row["id"],
            conversation_id=row["conversation_id"],
            owner_id=row["owner_id"],
            direction=Direction(row["direction"]),
            type=MessageType(row["type"]),
            body=row["body"],
            from_address=row["from_address"],
            to_address=row["to_address"],
            status=DeliveryStatus(row["status"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            provider_sid=row["provider_sid"],
            reply_to_id=row["reply_to_id"],
            error_code=row["error_code"],
            metadata=row["metadata"],
            version=row["version"],
        )

    def _integrity_error(self, error: IntegrityError, values: Mapping[str, Any]) -> Exception:
        if is_unique_violation(error):
            key = values.get("provider_sid") or values.get("reply_to_id") or values.get("id")
            return DuplicateMessage(str(key))
        # Otherwise a foreign key: the conversation or the replied-to message is missing.
        return NotFound(f"message {values.get('id')} refers to a missing conversation or message")

    async def add_if_new(self, message: Message) -> bool:
        values = self._to_row(message)
        result = await self._write(self._insert_or_nothing(values), values)
        return result.scalar_one_or_none() is not None

    async def get_by_provider_sid(self, provider_sid: str) -> Message | None:
        return await self._one(self.table.c.provider_sid == provider_sid)

    async def get_reply_to(self, message_id: str) -> Message | None:
        return await self._one(self.table.c.reply_to_id == message_id)

    async def list_for_conversation(
        self, conversation_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[Message]:
        return await self._page([self.table.c.conversation_id == conversation_id], limit, cursor)

    async def latest_for_conversation(
        self, conversation_id: str, limit: int
    ) -> builtins.list[Message]:
        if limit < 1:
            return []
        c = self.table.c
        stmt = (
            select(self.table)
            .where(c.conversation_id == conversation_id)
            .order_by(c.id.desc())
            .limit(limit)
        )
        newest_first = await self._many(stmt)
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
        c = self.table.c
        values: dict[str, Any] = {
            "status": DeliveryStatus(new).value,
            "updated_at": at,
            "version": c.version + 1,
        }
        if provider_sid is not None:
            values["provider_sid"] = provider_sid
        if error_code is not None:
            values["error_code"] = error_code
        # The check and the write are one statement: racing callers cannot both pass.
        stmt = (
            update(self.table)
            .where(c.id == message_id, c.status.in_([DeliveryStatus(s).value for s in expected]))
            .values(values)
        )
        result = await self._write(stmt, {"id": message_id, "provider_sid": provider_sid})
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    async def awaiting_reply(
        self, older_than: datetime, limit: int = 100
    ) -> builtins.list[Message]:
        if limit < 1:
            return []
        c = self.table.c
        reply = self.table.alias("reply")
        has_reply = exists().where(reply.c.reply_to_id == c.id)
        stmt = (
            select(self.table)
            .where(
                c.direction == Direction.INBOUND.value,
                c.created_at < older_than,
                ~has_reply,
            )
            .order_by(c.id)
            .limit(limit)
        )
        return await self._many(stmt)
