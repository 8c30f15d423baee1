"""In-memory repositories: the SQL adapter's contract, held in dicts, for tests and demos.

Committed rows live in an ``InMemoryStore``; each unit of work edits its own copy of the
tables and hands it back on commit (see ``InMemoryUnitOfWork``). Stored entities are never
mutated in place, and every entity going in or out is copied, so a caller holding one
cannot change what is stored.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import ClassVar, Generic, TypeVar

from application.errors import ConcurrencyError, InvalidQuery, NotFound
from application.ports.condition_matcher import matcher
from application.ports.repository import (
    Condition,
    Page,
    check_conditions,
    decode_cursor,
    encode_cursor,
)
from domain.conversation import Conversation, ConversationStatus
from domain.errors import DuplicateMessage
from domain.message import DeliveryStatus, Direction, Message

E = TypeVar("E", Conversation, Message)

_TIMESTAMPS = ("created_at", "updated_at", "last_message_at")


@dataclass(slots=True)
class Tables:
    """One copy of every table, keyed by id."""

    conversations: dict[str, Conversation] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)

    def copy(self) -> Tables:
        # Shallow on purpose: entities are replaced, never mutated, once stored.
        return Tables(dict(self.conversations), dict(self.messages))


@dataclass(slots=True)
class InMemoryStore:
    """Committed state shared by every unit of work built on it.

    ``lock`` serializes units for their whole duration, like SQLite's ``BEGIN IMMEDIATE``.
    """

    committed: Tables = field(default_factory=Tables)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _stored_form(entity: E) -> E:
    """What the database would keep: aware UTC timestamps, JSON-shaped metadata."""
    changes: dict[str, object] = {}
    for name in _TIMESTAMPS:
        value = getattr(entity, name, None)
        if value is None:
            continue
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware datetime")
        changes[name] = value.astimezone(UTC)
    if isinstance(entity, Message):
        # A JSON round trip, as in a JSON column: tuples become lists, non-JSON fails.
        changes["metadata"] = json.loads(json.dumps(entity.metadata))
    return replace(entity, **changes)  # type: ignore[arg-type]


class InMemoryRepository(Generic[E]):
    """The generic CRUD part, over one table of a unit's working copy."""

    entity_type: ClassVar[type]
    unfilterable: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, tables: Callable[[], Tables]) -> None:
        # A callable, because the unit swaps its working copy on rollback.
        self._tables = tables

    # -- hooks ------------------------------------------------------------------------
    def _rows(self) -> dict[str, E]:
        raise NotImplementedError

    def _check_constraints(self, entity: E, replacing: str | None) -> None:
        """Raise the error the database would for ``entity`` (``replacing`` its own row)."""
        raise NotImplementedError

    def _on_delete(self, entity_id: str) -> None:
        """Foreign key actions (cascade, set null) of deleting ``entity_id``."""

    # -- port methods -----------------------------------------------------------------
    async def create(self, entity: E) -> E:
        stored = _stored_form(entity)
        self._check_constraints(stored, replacing=None)
        self._rows()[stored.id] = stored
        return copy.deepcopy(entity)

    async def get_by_id(self, entity_id: str) -> E | None:
        return self._out(self._rows().get(entity_id))

    async def update(self, entity: E) -> E:
        current = self._rows().get(entity.id)
        if current is None or current.version != entity.version:
            raise ConcurrencyError(
                f"{self.entity_type.__name__} {entity.id} is not at version "
                f"{entity.version} (or is gone)"
            )
        stored = _stored_form(replace(entity, version=entity.version + 1))
        self._check_constraints(stored, replacing=entity.id)
        self._rows()[entity.id] = stored
        return copy.deepcopy(replace(entity, version=entity.version + 1))

    async def delete(self, entity_id: str) -> bool:
        if self._rows().pop(entity_id, None) is None:
            return False
        self._on_delete(entity_id)
        return True

    async def find_by(self, **filters: object) -> builtins.list[E]:
        return [self._copy(e) for e in self._sorted(self._matcher(filters))]

    async def count(self, filters: Mapping[str, object] | None = None) -> int:
        return len(self._sorted(self._matcher(filters or {})))

    async def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        filters: Mapping[str, object] | None = None,
    ) -> Page[E]:
        return self._page(self._matcher(filters or {}), limit, cursor)

    async def query(
        self, conditions: Sequence[Condition], *, limit: int = 50, cursor: str | None = None
    ) -> Page[E]:
        check_conditions(conditions, self.columns())
        return self._page(matcher(conditions), limit, cursor)

    @classmethod
    def columns(cls) -> frozenset[str]:
        """The columns callers may filter and query on."""
        return frozenset(f.name for f in fields(cls.entity_type)) - cls.unfilterable

    # -- shared helpers ---------------------------------------------------------------
    def _matcher(self, filters: Mapping[str, object]) -> Callable[[E], bool]:
        allowed = self.columns()
        unknown = sorted(str(name) for name in filters if name not in allowed)
        if unknown:
            names = ", ".join(map(repr, unknown))
            raise InvalidQuery(f"cannot filter {self.entity_type.__name__} by {names}")
        wanted = dict(filters)
        return lambda e: all(getattr(e, k) == v for k, v in wanted.items())

    def _sorted(self, keep: Callable[[E], bool]) -> builtins.list[E]:
        return sorted((e for e in self._rows().values() if keep(e)), key=lambda e: e.id)

    def _page(self, keep: Callable[[E], bool], limit: int, cursor: str | None) -> Page[E]:
        if limit < 1:
            raise InvalidQuery(f"limit must be at least 1, got {limit}")
        after = decode_cursor(cursor) if cursor is not None else None
        rows = self._sorted(lambda e: keep(e) and (after is None or e.id > after))
        items = [self._copy(e) for e in rows[:limit]]
        return Page(items, encode_cursor(items[-1].id) if len(rows) > limit else None)

    def _copy(self, entity: E) -> E:
        return copy.deepcopy(entity)

    def _out(self, entity: E | None) -> E | None:
        return None if entity is None else copy.deepcopy(entity)


class InMemoryConversationRepository(InMemoryRepository[Conversation]):
    entity_type = Conversation

    def _rows(self) -> dict[str, Conversation]:
        return self._tables().conversations

    def _check_constraints(self, entity: Conversation, replacing: str | None) -> None:
        taken = replacing is None and entity.id in self._rows()
        if entity.status is ConversationStatus.OPEN:
            other = self._find_open(entity.owner_id, entity.contact)
            taken = taken or (other is not None and other.id != entity.id)
        if taken:
            raise ConcurrencyError(
                f"conversation {entity.id} conflicts with a stored one "
                "(same id, or an open conversation for this owner and contact exists)"
            )

    def _on_delete(self, entity_id: str) -> None:
        # ON DELETE CASCADE for its messages, then SET NULL for replies pointing at them.
        messages = self._tables().messages
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
            self._rows()[conversation.id] = _stored_form(conversation)
        stored = self._find_open(conversation.owner_id, conversation.contact)
        if stored is None:
            raise ConcurrencyError(f"conversation id {conversation.id} is taken by a closed one")
        return copy.deepcopy(stored)


class InMemoryMessageRepository(InMemoryRepository[Message]):
    entity_type = Message
    # JSON equality differs between backends; the SQL adapter refuses it too.
    unfilterable = frozenset({"metadata"})

    def _rows(self) -> dict[str, Message]:
        return self._tables().messages

    def _unique_conflict(self, entity: Message, replacing: str | None) -> bool:
        if replacing is None and entity.id in self._rows():
            return True
        return any(
            other.id != entity.id
            and (
                (entity.provider_sid is not None and other.provider_sid == entity.provider_sid)
                or (entity.reply_to_id is not None and other.reply_to_id == entity.reply_to_id)
            )
            for other in self._rows().values()
        )

    def _check_references(self, entity: Message) -> None:
        missing_reply_target = (
            entity.reply_to_id is not None and entity.reply_to_id not in self._rows()
        )
        if entity.conversation_id not in self._tables().conversations or missing_reply_target:
            raise NotFound(f"message {entity.id} refers to a missing conversation or message")

    def _check_constraints(self, entity: Message, replacing: str | None) -> None:
        if self._unique_conflict(entity, replacing):
            raise DuplicateMessage(entity.provider_sid or entity.reply_to_id or entity.id)
        self._check_references(entity)

    def _on_delete(self, entity_id: str) -> None:
        rows = self._rows()
        for other in [m for m in rows.values() if m.reply_to_id == entity_id]:
            rows[other.id] = replace(other, reply_to_id=None)

    async def add_if_new(self, message: Message) -> bool:
        stored = _stored_form(message)
        if self._unique_conflict(stored, replacing=None):
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
        stored = _stored_form(changed)
        if self._unique_conflict(stored, replacing=message_id):
            raise DuplicateMessage(provider_sid or message_id)
        self._rows()[message_id] = stored
        return True

    async def awaiting_reply(
        self, older_than: datetime, limit: int = 100
    ) -> builtins.list[Message]:
        if limit < 1:
            return []
        if older_than.tzinfo is None:
            raise ValueError("naive datetime refused: pass an aware datetime")
        replied = {m.reply_to_id for m in self._rows().values() if m.reply_to_id is not None}
        rows = self._sorted(
            lambda m: (
                m.direction is Direction.INBOUND
                and m.created_at < older_than
                and m.id not in replied
            )
        )
        return [self._copy(m) for m in rows[:limit]]
