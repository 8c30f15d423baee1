"""The generic repository over PostgREST, for any declared entity: reads go to the server
and are merged with the unit's pending rows; writes are checked now (unique keys from the
``EntitySpec``) and queued for the commit."""

from __future__ import annotations

import builtins
import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Generic, TypeVar, cast

from postgrest import CountMethod

from adapters.supabase.client import SupabaseConnection
from adapters.supabase.rows import Row, apply_filter, matcher, parsed_row, wire_row
from adapters.supabase.working_set import WorkingSet
from application.entities import ColumnType, EntitySpec, Identified
from application.errors import ConcurrencyError, InvalidQuery
from application.ports.repository import (
    Condition,
    Page,
    check_conditions,
    decode_cursor,
    encode_cursor,
)

E = TypeVar("E", bound=Identified)


class SupabaseRepository(Generic[E]):
    """CRUD over any declared entity; a module's extension subclasses it for its own
    queries and foreign keys (see ``repositories.py``)."""

    def __init__(
        self, connection: SupabaseConnection, work: Callable[[], WorkingSet],
        spec: EntitySpec[E],
    ) -> None:
        self._connection = connection
        # A callable: the unit refuses use outside ``async with``.
        self._work = work
        self.spec = spec
        self.table = spec.table
        self._times = spec.columns_of(ColumnType.DATETIME)
        self._json = spec.columns_of(ColumnType.JSON)

    # -- hooks ------------------------------------------------------------------------
    def _to_row(self, entity: E) -> Row:
        return wire_row(self.spec.to_row(entity), self._times, self._json)

    def _from_row(self, row: Mapping[str, Any]) -> E:
        return self.spec.from_row(parsed_row(row, self._times))

    async def _check_constraints(self, entity: E, replacing: str | None) -> None:
        """Raise the error the database would for storing ``entity``."""
        error = await self._unique_violation(entity, replacing)
        if error is not None:
            raise error

    async def _unique_violation(self, entity: E, replacing: str | None) -> Exception | None:
        """The declared error of the first key ``entity`` would break (now), or None."""
        row = self.spec.to_row(entity)
        if replacing is None and await self.get_by_id(entity.id) is not None:
            return self.spec.conflict("", row)
        for key in self.spec.unique:
            if any(row[c] is None for c in key.columns):
                continue  # as in SQL: a NULL in the key never conflicts
            conditions = [Condition(c, "eq", row[c]) for c in key.columns]
            if key.where is not None:
                if row[key.where[0]] != key.where[1]:
                    continue
                conditions.append(Condition(key.where[0], "eq", key.where[1]))
            other = await self._exists(*conditions)
            if other is not None and other.id != entity.id:
                return key.error(row)
        return None

    async def _cascade_delete(self, entity_id: str) -> None:
        """Show this unit what the database's ON DELETE actions will do at commit."""

    # -- port methods -----------------------------------------------------------------
    async def create(self, entity: E) -> E:
        stored = self._stored(entity)
        await self._check_constraints(stored, replacing=None)
        self._queue("insert", stored)
        return copy.deepcopy(entity)

    async def get_by_id(self, entity_id: str) -> E | None:
        pending = self._pending()
        if entity_id in pending:
            mine: E | None = copy.deepcopy(pending[entity_id])
            return mine
        found = await self._fetch([Condition("id", "eq", entity_id)], limit=1)
        return found[0] if found else None

    async def update(self, entity: E) -> E:
        current = await self.get_by_id(entity.id)
        if current is None or current.version != entity.version:
            raise ConcurrencyError(
                f"{self.table} {entity.id} is not at version {entity.version} (or is gone)"
            )
        bumped = cast(E, replace(cast(Any, entity), version=entity.version + 1))
        stored = self._stored(bumped)
        await self._check_constraints(stored, replacing=entity.id)
        self._queue("update", stored, version=entity.version)
        return copy.deepcopy(bumped)

    async def delete(self, entity_id: str) -> bool:
        current = await self.get_by_id(entity_id)
        if current is None:
            return False
        op = {"kind": "delete", "table": self.table, "id": entity_id, "version": current.version}
        self._work().record(op, self.table, entity_id, None)
        await self._cascade_delete(entity_id)
        return True

    async def find_by(self, **filters: object) -> builtins.list[E]:
        return await self._fetch(self._equalities(filters))

    async def count(self, filters: Mapping[str, object] | None = None) -> int:
        conditions = self._equalities(filters or {})
        pending = self._pending()
        request = await self._select(conditions, pending, "id", count=True)
        response = await self._connection.execute(request)
        keep = matcher(conditions)
        return int(response.count or 0) + sum(
            1 for e in pending.values() if e is not None and keep(e)
        )

    async def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        filters: Mapping[str, object] | None = None,
    ) -> Page[E]:
        return await self._page(self._equalities(filters or {}), limit, cursor)

    async def query(
        self, conditions: Sequence[Condition], *, limit: int = 50, cursor: str | None = None
    ) -> Page[E]:
        check_conditions(conditions, self.columns())
        return await self._page(list(conditions), limit, cursor)

    # -- shared helpers ---------------------------------------------------------------
    def columns(self) -> frozenset[str]:
        return self.spec.filterable

    def _equalities(self, filters: Mapping[str, object]) -> builtins.list[Condition]:
        # Validate every name before any request: filter keys may come from callers.
        unknown = sorted(str(name) for name in filters if name not in self.columns())
        if unknown:
            raise InvalidQuery(f"cannot filter {self.table} by {', '.join(map(repr, unknown))}")
        return [Condition(name, "eq", value) for name, value in filters.items()]

    def _pending(self) -> dict[str, Any]:
        return self._work().table(self.table)

    def _stored(self, entity: E) -> E:
        """What the database would hand back: the entity through its wire form."""
        return self._from_row(self._to_row(entity))

    def _queue(self, kind: str, stored: E, **extra: object) -> None:
        op: dict[str, Any] = {
            "kind": kind, "table": self.table, "id": stored.id, "row": self._to_row(stored)
        }
        op.update(extra)
        self._work().record(op, self.table, stored.id, stored)

    async def _select(
        self, conditions: Sequence[Condition], pending: Mapping[str, Any], columns: str = "*",
        *, count: bool = False,
    ) -> Any:
        table = (await self._connection.postgrest()).table(self.table)
        request = (
            table.select(columns, count=CountMethod.exact, head=True)
            if count
            else table.select(columns)
        )
        for condition in conditions:
            request = apply_filter(request, condition)
        if pending:
            # The unit's own version of these rows replaces the server's.
            request = request.not_.in_("id", sorted(pending))
        return request

    async def _fetch(
        self,
        conditions: Sequence[Condition],
        *,
        limit: int | None = None,
        descending: bool = False,
    ) -> builtins.list[E]:
        """Rows matching every condition, ordered by id, the unit's pending rows merged."""
        pending = self._pending()
        request = (await self._select(conditions, pending)).order("id", desc=descending)
        if limit is not None:
            request = request.limit(limit)
        response = await self._connection.execute(request)
        found = [self._from_row(row) for row in response.data]
        keep = matcher(conditions)
        found += [copy.deepcopy(e) for e in pending.values() if e is not None and keep(e)]
        found.sort(key=lambda e: e.id, reverse=descending)
        return found if limit is None else found[:limit]

    async def _page(
        self, conditions: builtins.list[Condition], limit: int, cursor: str | None
    ) -> Page[E]:
        if limit < 1:
            raise InvalidQuery(f"limit must be at least 1, got {limit}")
        if cursor is not None:
            conditions = [*conditions, Condition("id", "gt", decode_cursor(cursor))]
        # One extra row tells whether another page exists without a second request.
        items = await self._fetch(conditions, limit=limit + 1)
        if len(items) > limit:
            return Page(items[:limit], encode_cursor(items[limit - 1].id))
        return Page(items, None)

    async def _exists(self, *conditions: Condition) -> E | None:
        found = await self._fetch(conditions, limit=1)
        return found[0] if found else None
