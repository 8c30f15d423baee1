"""The generic repository over any declared entity's table: CRUD, filters, keyset pages,
operator queries. Statements are composed from the ``EntitySpec``, once per table."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC
from typing import Any, Generic, TypeVar, cast

import psycopg2
from psycopg2 import sql
from psycopg2.extras import Json

from adapters.psycopg.errors import UNIQUE_VIOLATION
from adapters.psycopg.session import Cached, PgSession, Row, Statement
from adapters.psycopg.statements import Where, column_list, conditions, equality, plain
from application.entities import ColumnType, EntitySpec, Identified
from application.errors import ConcurrencyError, InvalidQuery, NotFound
from application.ports.repository import (
    Condition,
    Page,
    check_conditions,
    decode_cursor,
    encode_cursor,
)

E = TypeVar("E", bound=Identified)

_STATEMENTS: dict[str, Cached] = {}
_MAX_STATEMENTS = 2000


class _Layout:
    """One spec's columns in statement order (``id`` first) and how values cross the wire."""

    def __init__(self, spec: EntitySpec[Any]) -> None:
        self.names = ("id", *(n for n in spec.column_names if n != "id"))
        self.json = frozenset(spec.columns_of(ColumnType.JSON))
        self.times = frozenset(spec.columns_of(ColumnType.DATETIME))
        self.filterable = spec.filterable

    def to_params(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        json, times = self.json, self.times
        return tuple(
            Json(row[n]) if n in json else (plain(row[n]) if n in times else row[n])
            for n in self.names
        )

    def from_tuple(self, values: Row) -> dict[str, Any]:
        row = dict(zip(self.names, values, strict=True))
        for name in self.times:
            value = row[name]
            if value is not None:
                # psycopg2 hands back the session's time zone; entities carry UTC.
                row[name] = value.astimezone(UTC)
        return row


_LAYOUTS: dict[str, _Layout] = {}


class PsycopgRepository(Generic[E]):
    """CRUD over any declared entity; a module's extension subclasses it for its own
    queries (see ``repositories.py``)."""

    def __init__(self, session: PgSession, spec: EntitySpec[E]) -> None:
        self._session = session
        self.spec = spec
        self.table = spec.table
        layout = _LAYOUTS.get(spec.table)
        if layout is None:
            layout = _LAYOUTS[spec.table] = _Layout(spec)
        self._layout = layout
        self.column_names = layout.names

    # -- hooks ------------------------------------------------------------------------
    def _to_row(self, entity: E) -> tuple[Any, ...]:
        return self._layout.to_params(self.spec.to_row(entity))

    def _from_row(self, row: Row) -> E:
        return self.spec.from_row(self._layout.from_tuple(row))

    def _integrity_error(self, error: psycopg2.Error, row: Sequence[Any]) -> Exception:
        """The application error for a constraint violation while writing ``row``."""
        values = dict(zip(self.column_names, row, strict=False))
        if error.pgcode == UNIQUE_VIOLATION:
            name = getattr(error.diag, "constraint_name", None) or ""
            return self.spec.conflict(f"{name} {error.pgerror or ''}", values)
        # Otherwise a foreign key: a row this one refers to is missing.
        return NotFound(f"{self.table} {values.get('id')} refers to a missing row")

    # -- statements (composed once per table, rendered once per pool) ------------------
    def _name(self) -> sql.Composable:
        return sql.Identifier(self.table)

    def _select(self) -> sql.Composable:
        return sql.SQL("SELECT {} FROM {}").format(column_list(self.column_names), self._name())

    def _cached(
        self, key: str, compose: Callable[[], sql.Composable]
    ) -> Statement:
        # Statements are composed once per table and key: the hot paths skip rebuilding
        # them. Keys of filter shapes come from callers: past the bound, new ones are
        # composed each time instead of kept.
        full_key = f"{self.table}.{key}"
        found = _STATEMENTS.get(full_key)
        if found is None:
            if len(_STATEMENTS) >= _MAX_STATEMENTS:
                return compose()
            found = _STATEMENTS[full_key] = Cached(full_key, compose())
        return found

    def _insert_statement(self, on_conflict_nothing: bool = False) -> Statement:
        cls = self
        def compose() -> sql.Composable:
            insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                cls._name(),
                column_list(cls.column_names),
                sql.SQL(", ").join(sql.Placeholder() * len(cls.column_names)),
            )
            if not on_conflict_nothing:
                return insert
            return sql.SQL("{} ON CONFLICT DO NOTHING RETURNING {}").format(
                insert, sql.Identifier("id"))

        return self._cached(f"insert{on_conflict_nothing}", compose)

    # -- port methods -----------------------------------------------------------------
    async def create(self, entity: E) -> E:
        row = self._to_row(entity)
        await self._write(self._insert_statement(), row)
        return entity

    async def get_by_id(self, entity_id: str) -> E | None:
        statement = self._cached("by_id", lambda: sql.SQL("{} WHERE {} = %s").format(
            self._select(), sql.Identifier("id")))
        return await self._one(statement, [entity_id])

    async def update(self, entity: E) -> E:
        cls = self
        bumped = cast(E, replace(cast(Any, entity), version=entity.version + 1))
        values: tuple[Any, ...] = self._to_row(bumped)
        names = cls.column_names[1:]  # every column but id (always first), version included
        statement = self._cached("update", lambda: sql.SQL(
            "UPDATE {} SET {} WHERE {} = %s AND {} = %s").format(
            cls._name(),
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names),
            sql.Identifier("id"),
            sql.Identifier("version"),
        ))
        count, _ = await self._write(statement, [*values[1:], entity.id, entity.version])
        if count != 1:
            raise ConcurrencyError(
                f"{cls.table} {entity.id} is not at version {entity.version} (or is gone)"
            )
        return bumped

    async def delete(self, entity_id: str) -> bool:
        statement = self._cached("delete", lambda: sql.SQL("DELETE FROM {} WHERE {} = %s").format(
            self._name(), sql.Identifier("id")))
        count, _ = await self._write(statement, [entity_id])
        return count == 1

    async def find_by(self, **filters: object) -> builtins.list[E]:
        where = equality(self._checked(filters))
        statement = sql.SQL("{} WHERE {} ORDER BY {}").format(
            self._select(), where.clause, sql.Identifier("id"))
        return await self._many(statement, where.params)

    async def count(self, filters: Mapping[str, object] | None = None) -> int:
        where = equality(self._checked(filters or {}))
        statement = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
            self._name(), where.clause)
        found = await self._session.fetch_one(statement, where.params)
        return int(found[0]) if found else 0

    async def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        filters: Mapping[str, object] | None = None,
    ) -> Page[E]:
        return await self._page(equality(self._checked(filters or {})), limit, cursor)

    async def query(
        self, conditions_: Sequence[Condition], *, limit: int = 50, cursor: str | None = None
    ) -> Page[E]:
        check_conditions(conditions_, self.columns())
        return await self._page(conditions(conditions_), limit, cursor)

    def columns(self) -> frozenset[str]:
        """The columns callers may filter and query on."""
        return self._layout.filterable

    # -- shared helpers ---------------------------------------------------------------
    def _checked(self, filters: Mapping[str, object]) -> Mapping[str, object]:
        # Validate every name before building anything: filter keys may come from callers.
        unknown = sorted(str(name) for name in filters if name not in self.columns())
        if unknown:
            names = ", ".join(map(repr, unknown))
            raise InvalidQuery(f"cannot filter {self.table} by {names}")
        return filters

    async def _page(self, where: Where, limit: int, cursor: str | None) -> Page[E]:
        if limit < 1:
            raise InvalidQuery(f"limit must be at least 1, got {limit}")
        params = where.params
        if cursor is not None:
            params = [*params, decode_cursor(cursor)]

        def compose() -> sql.Composable:
            clause = where.clause
            if cursor is not None:
                clause = sql.SQL("{} AND {} > %s").format(clause, sql.Identifier("id"))
            # One extra row tells whether another page exists without a second query.
            return sql.SQL("{} WHERE {} ORDER BY {} LIMIT %s").format(
                self._select(), clause, sql.Identifier("id"))

        # Composed and rendered once per shape (a send's window checks run one per send).
        statement = self._cached(
            f"page[{where.shape}]{'after' if cursor is not None else ''}", compose)
        items = await self._many(statement, [*params, limit + 1])
        if len(items) > limit:
            return Page(items[:limit], encode_cursor(items[limit - 1].id))
        return Page(items, None)

    async def _one(self, statement: sql.Composable | Cached, params: Sequence[Any]) -> E | None:
        row = await self._session.fetch_one(statement, params)
        return None if row is None else self._from_row(row)

    async def _many(
        self, statement: sql.Composable | Cached, params: Sequence[Any]
    ) -> builtins.list[E]:
        return [self._from_row(row) for row in await self._session.fetch_all(statement, params)]

    async def _write(
        self, statement: sql.Composable | Cached, params: Sequence[Any], *, returning: bool = False
    ) -> tuple[int, builtins.list[Row]]:
        try:
            return await self._session.write(statement, params, returning=returning)
        except psycopg2.IntegrityError as error:
            raise self._integrity_error(error, params) from error
