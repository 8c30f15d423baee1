"""Conversation and message repositories in raw SQL, bound to one unit's session."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extras import Json

from adapters.psycopg.base import PsycopgRepository
from adapters.psycopg.errors import UNIQUE_VIOLATION
from adapters.psycopg.session import Row
from adapters.psycopg.statements import plain
from application.errors import ConcurrencyError, NotFound
from application.ports.repository import Page
from domain.conversation import Conversation, ConversationStatus
from domain.errors import DuplicateMessage
from domain.message import DeliveryStatus, Direction, Message, MessageType


def _utc(value: datetime) -> datetime:
    # psycopg2 hands back the session's time zone; entities carry UTC.
    return value.astimezone(UTC)


class PsycopgConversationRepository(PsycopgRepository[Conversation]):
    table = "conversations"
    column_names = ("id", "owner_id", "contact", "channel", "status", "created_at",
                    "updated_at", "last_message_at", "version")

    def _to_row(self, entity: Conversation) -> tuple[Any, ...]:
        return (entity.id, entity.owner_id, entity.contact, entity.channel,
                ConversationStatus(entity.status).value, plain(entity.created_at),
                plain(entity.updated_at), plain(entity.last_message_at), entity.version)

    def _from_row(self, row: Row) -> Conversation:
        return Conversation(id=row[0], owner_id=row[1], contact=row[2], channel=row[3],
                            status=ConversationStatus(row[4]), created_at=_utc(row[5]),
                            updated_at=_utc(row[6]), last_message_at=_utc(row[7]),
                            version=row[8])

    def _integrity_error(self, error: psycopg2.Error, row: Sequence[Any]) -> Exception:
        # The caller lost a race for the id or for the one open conversation's slot.
        return ConcurrencyError(
            f"conversation {row[0]} conflicts with a stored one "
            "(same id, or an open conversation for this owner and contact exists)"
        )

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
    table = "messages"
    column_names = ("id", "conversation_id", "owner_id", "direction", "type", "body",
                    "from_address", "to_address", "status", "provider_sid", "reply_to_id",
                    "error_code", "metadata", "created_at", "updated_at", "version")
    unfilterable = frozenset({"metadata"})

    def _to_row(self, entity: Message) -> tuple[Any, ...]:
        return (entity.id, entity.conversation_id, entity.owner_id,
                Direction(entity.direction).value, MessageType(entity.type).value, entity.body,
                entity.from_address, entity.to_address, DeliveryStatus(entity.status).value,
                entity.provider_sid, entity.reply_to_id, entity.error_code,
                Json(entity.metadata), plain(entity.created_at), plain(entity.updated_at),
                entity.version)

    def _from_row(self, row: Row) -> Message:
        return Message(id=row[0], conversation_id=row[1], owner_id=row[2],
                       direction=Direction(row[3]), type=MessageType(row[4]), body=row[5],
                       from_address=row[6], to_address=row[7], status=DeliveryStatus(row[8]),
                       provider_sid=row[9], reply_to_id=row[10], error_code=row[11],
                       metadata=row[12], created_at=_utc(row[13]), updated_at=_utc(row[14]),
                       version=row[15])

    def _integrity_error(self, error: psycopg2.Error, row: Sequence[Any]) -> Exception:
        if error.pgcode == UNIQUE_VIOLATION:
            return DuplicateMessage(str(row[9] or row[10] or row[0]))
        # Otherwise a foreign key: the conversation or the replied-to message is missing.
        return NotFound(f"message {row[0]} refers to a missing conversation or message")

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
        where = sql.SQL("{} = %s").format(sql.Identifier("conversation_id"))
        return await self._page((where, [conversation_id]), limit, cursor)

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
        self, older_than: datetime, limit: int = 100
    ) -> builtins.list[Message]:
        if limit < 1:
            return []
        statement = self._cached("awaiting", lambda: sql.SQL(
            "{select} WHERE {direction} = %s AND {created} < %s AND NOT EXISTS "
            "(SELECT 1 FROM {table} AS reply WHERE reply.{reply_to} = {table}.{id}) "
            "ORDER BY {id} LIMIT %s"
        ).format(select=self._select(), direction=sql.Identifier("direction"),
                 created=sql.Identifier("created_at"), table=self._name(),
                 reply_to=sql.Identifier("reply_to_id"), id=sql.Identifier("id")))
        return await self._many(statement, [Direction.INBOUND.value, plain(older_than), limit])
