"""In-memory repositories: the SQL adapters' contract, held in dicts, for tests and demos.

Committed rows live in an ``InMemoryStore``; each unit of work edits its own copy of the
tables and hands it back on commit (see ``InMemoryUnitOfWork``). Stored entities are never
mutated in place, and every entity going in or out is copied, so a caller holding one
cannot change what is stored. Unique keys come from each entity's ``EntitySpec``; foreign
keys and their ON DELETE actions are a module's extension's business (as in
``conversation_repositories.py``).
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from application.entities import ColumnType, EntitySpec, Identified, UniqueKey
from application.errors import ConcurrencyError, InvalidQuery
from application.ports.condition_matcher import matcher
from application.ports.repository import (
    Condition,
    Page,
    check_conditions,
    decode_cursor,
    encode_cursor,
)

E = TypeVar("E", bound=Identified)


@dataclass(slots=True)
class Tables:
    """One copy of every table (by name), each keyed by id."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def table(self, name: str) -> dict[str, Any]:
        return self.rows.setdefault(name, {})

    def copy(self) -> Tables:
        # Shallow on purpose: entities are replaced, never mutated, once stored.
        return Tables({name: dict(rows) for name, rows in self.rows.items()})


@dataclass(slots=True)
class InMemoryStore:
    """Committed state shared by every unit of work built on it.

    ``lock`` serializes units for their whole duration, like SQLite's ``BEGIN IMMEDIATE``.
    """

    committed: Tables = field(default_factory=Tables)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _normal(value: Any, kind: ColumnType) -> Any:
    if value is None:
        return None
    if kind is ColumnType.DATETIME:
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware datetime")
        return value.astimezone(UTC)
    if kind is ColumnType.JSON:
        # A JSON round trip, as in a JSON column: tuples become lists, non-JSON fails.
        return json.loads(json.dumps(value))
    return value


def _where_holds(key: UniqueKey, entity: object) -> bool:
    return key.where is None or getattr(entity, key.where[0]) == key.where[1]


class InMemoryRepository(Generic[E]):
    """CRUD over any declared entity, over one table of a unit's working copy."""

    def __init__(self, tables: Callable[[], Tables], spec: EntitySpec[E]) -> None:
        # A callable, because the unit swaps its working copy on rollback.
        self._tables = tables
        self.spec = spec
        self._kinds = {c.name: c.type for c in spec.columns}

    # -- hooks ------------------------------------------------------------------------
    def _rows(self) -> dict[str, E]:
        return self._tables().table(self.spec.table)

    def _check_constraints(self, entity: E, replacing: str | None) -> None:
        """Raise the error the database would for ``entity`` (``replacing`` its own row)."""
        error = self._unique_violation(entity, replacing)
        if error is not None:
            raise error

    def _on_delete(self, entity_id: str) -> None:
        """Foreign key actions (cascade, set null) of deleting ``entity_id``."""

    # -- unique keys ------------------------------------------------------------------
    def _unique_violation(self, entity: E, replacing: str | None) -> Exception | None:
        """The declared error of the first key ``entity`` would break, or None."""
        if replacing is None and entity.id in self._rows():
            return self.spec.conflict("", self.spec.to_row(entity))
        for key in self.spec.unique:
            values = [getattr(entity, c) for c in key.columns]
            # As in SQL: a NULL in the key never conflicts; a partial key only counts rows
            # it covers.
            if any(v is None for v in values) or not _where_holds(key, entity):
                continue
            for other in self._rows().values():
                if (other.id != entity.id and _where_holds(key, other)
                        and [getattr(other, c) for c in key.columns] == values):
                    return key.error(self.spec.to_row(entity))
        return None

    def _stored_form(self, entity: E) -> E:
        """What the database would keep: aware UTC timestamps, JSON-shaped values."""
        row = self.spec.to_row(entity)
        return self.spec.from_row({k: _normal(v, self._kinds[k]) for k, v in row.items()})

    # -- port methods -----------------------------------------------------------------
    async def create(self, entity: E) -> E:
        stored = self._stored_form(entity)
        self._check_constraints(stored, replacing=None)
        self._rows()[stored.id] = stored
        return copy.deepcopy(entity)

    async def get_by_id(self, entity_id: str) -> E | None:
        return self._out(self._rows().get(entity_id))

    async def update(self, entity: E) -> E:
        current = self._rows().get(entity.id)
        if current is None or current.version != entity.version:
            raise ConcurrencyError(
                f"{self.spec.table} {entity.id} is not at version "
                f"{entity.version} (or is gone)"
            )
        bumped = cast(E, replace(cast(Any, entity), version=entity.version + 1))
        stored = self._stored_form(bumped)
        self._check_constraints(stored, replacing=entity.id)
        self._rows()[entity.id] = stored
        return copy.deepcopy(bumped)

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

    def columns(self) -> frozenset[str]:
        """The columns callers may filter and query on."""
        return self.spec.filterable

    # -- shared helpers ---------------------------------------------------------------
    def _matcher(self, filters: Mapping[str, object]) -> Callable[[E], bool]:
        allowed = self.columns()
        unknown = sorted(str(name) for name in filters if name not in allowed)
        if unknown:
            names = ", ".join(map(repr, unknown))
            raise InvalidQuery(f"cannot filter {self.spec.table} by {names}")
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


