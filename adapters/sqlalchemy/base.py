"""The generic repository over any declared entity's table, bound to one session."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import (
    Executable,
    Result,
    Table,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy import insert as generic_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.conditions import bind_where
from adapters.sqlalchemy.engine import sqlstate, translate_errors
from adapters.sqlalchemy.known_rows import Key, KnownRows, known_rows
from adapters.sqlalchemy.prepared import reusable
from adapters.sqlalchemy.schema import table_for
from application.entities import EntitySpec, Identified
from application.errors import ConcurrencyError, InvalidQuery, NotFound
from application.ports.repository import (
    Condition,
    Page,
    check_conditions,
    decode_cursor,
    encode_cursor,
)

E = TypeVar("E", bound=Identified)

# Built once per table: a statement object keeps its cache key, so each call skips
# building and hashing a new one (most of SQLAlchemy's cost per statement locally).
_STATEMENTS: dict[tuple[str, str], Executable] = {}
_MAX_STATEMENTS = 2000  # shapes and limits may come from callers: the cache is bounded


def cached_statement(key: tuple[str, str], build: Callable[[], Executable]) -> Executable:
    """The statement built once for ``key`` (table name, what it does)."""
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = build()
        if len(_STATEMENTS) < _MAX_STATEMENTS:
            stmt = _STATEMENTS[key] = reusable(stmt)
    return stmt

_UNIQUE_SQLITE_ERRORS = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}
_UNIQUE_SQLSTATE = "23505"


def is_unique_violation(error: IntegrityError) -> bool:
    """Unique/primary key violation, as opposed to a foreign key or NOT NULL one."""
    orig = error.orig
    sqlite_name = getattr(orig, "sqlite_errorname", None)
    if sqlite_name:
        return sqlite_name in _UNIQUE_SQLITE_ERRORS
    code = sqlstate(error)
    if code:
        return code == _UNIQUE_SQLSTATE
    return "unique" in str(orig).lower()


def _violation_text(error: IntegrityError) -> str:
    """What names the broken constraint: the driver's message, plus asyncpg's name."""
    orig = error.orig
    cause = getattr(orig, "__cause__", None)
    names = [getattr(x, "constraint_name", None) for x in (orig, cause)]
    return " ".join([*(n for n in names if n), str(orig)])


class SqlaRepository(Generic[E]):
    """CRUD over any declared entity; a module's extension subclasses it for its own
    queries (see ``repositories.py``)."""

    def __init__(self, session: AsyncSession, spec: EntitySpec[E]) -> None:
        self._session = session
        self.spec = spec
        self.table: Table = table_for(spec)
        # A session bound to a connection keys its rows by the connection's engine.
        self._known: KnownRows = known_rows(session.get_bind().engine)
        self._unsaved: builtins.list[Key] = []  # remembered writes of the open transaction

    # -- hooks ------------------------------------------------------------------------
    def _to_row(self, entity: E) -> dict[str, Any]:
        return self.spec.to_row(entity)

    def _from_row(self, row: RowMapping) -> E:
        return self.spec.from_row(cast(Mapping[str, Any], row))

    def _wrote(self, entity: E) -> None:
        """``entity`` is what this unit stored: known once the unit commits."""
        self._unsaved.append(self._known.remember(self.table.name, entity))

    def saved(self) -> None:
        """The unit of work committed: what this repository wrote stays known."""
        self._unsaved.clear()

    def abandoned(self) -> None:
        """The unit ended without committing: rows it wrote may never have existed."""
        self._known.forget(self._unsaved)
        self._unsaved.clear()

    def _integrity_error(self, error: IntegrityError, values: Mapping[str, Any]) -> Exception:
        """The application error for a constraint violation while writing ``values``."""
        if is_unique_violation(error):
            return self.spec.conflict(_violation_text(error), values)
        # Otherwise a foreign key: a row this one refers to is missing.
        return NotFound(f"{self.table.name} {values.get('id')} refers to a missing row")

    # -- port methods -----------------------------------------------------------------
    async def create(self, entity: E) -> E:
        values = self._to_row(entity)
        await self._write(generic_insert(self.table).values(values), values)
        self._wrote(entity)
        return entity

    async def get_by_id(self, entity_id: str) -> E | None:
        return await self._one_of(self._by_column("id"), {"p_value": entity_id})

    def _by_column(self, column: str) -> Executable:
        """``SELECT * WHERE column = :p_value``, built once per table and column."""
        return cached_statement((self.table.name, f"by {column}"), lambda: select(
            self.table).where(self.table.c[column] == bindparam("p_value")))

    async def update(self, entity: E) -> E:
        row = self._to_row(entity)
        values = {k: v for k, v in row.items() if k != "id"}
        before = self._known.get(self.table.name, entity.id, entity.version)
        if before is not None:
            # Only what changed since this version was read or written (known_rows.py).
            old = self._to_row(before)
            values = {k: v for k, v in values.items() if old[k] != v}
        values["version"] = entity.version + 1
        params = {"p_id": entity.id, "p_version": entity.version}
        params.update({f"v_{k}": v for k, v in values.items()})
        result = await self._write(self._update_statement(values), row, params)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrencyError(
                f"{self.table.name} {entity.id} is not at version {entity.version} (or is gone)"
            )
        updated = cast(E, replace(cast(Any, entity), version=entity.version + 1))
        self._wrote(updated)
        return updated

    def _update_statement(self, values: Mapping[str, Any]) -> Executable:
        """SET ``values``' columns at the expected version; built once per table and set
        of columns (a handful per table: what each kind of change touches)."""
        names = tuple(sorted(values))
        key = (self.table.name, "update " + ",".join(names))
        stmt = _STATEMENTS.get(key)
        if stmt is None:
            c = self.table.c
            stmt = (
                update(self.table)
                .where(c.id == bindparam("p_id"), c.version == bindparam("p_version"))
                .values({name: bindparam(f"v_{name}") for name in names})
            )
            if len(_STATEMENTS) < _MAX_STATEMENTS:
                stmt = _STATEMENTS[key] = reusable(stmt)
        return stmt

    async def delete(self, entity_id: str) -> bool:
        result = await self._execute(delete(self.table).where(self.table.c.id == entity_id))
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    async def find_by(self, **filters: object) -> builtins.list[E]:
        where = bind_where(self._filters(filters))
        stmt = select(self.table).where(*where.clauses(self.table)).order_by(self.table.c.id)
        return await self._many(stmt, where.params)

    async def count(self, filters: Mapping[str, object] | None = None) -> int:
        where = bind_where(self._filters(filters or {}))
        stmt = select(func.count()).select_from(self.table).where(*where.clauses(self.table))
        return int((await self._execute(stmt, where.params)).scalar_one())

    async def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        filters: Mapping[str, object] | None = None,
    ) -> Page[E]:
        return await self._page(self._filters(filters or {}), limit, cursor)

    async def query(
        self, conditions: Sequence[Condition], *, limit: int = 50, cursor: str | None = None
    ) -> Page[E]:
        check_conditions(conditions, self.columns())
        return await self._page(conditions, limit, cursor)

    def columns(self) -> frozenset[str]:
        """The columns callers may filter and query on."""
        return self.spec.filterable

    # -- shared helpers ---------------------------------------------------------------
    def _filters(self, filters: Mapping[str, object]) -> builtins.list[Condition]:
        """Equality filters as conditions (None: IS NULL), every name checked first:
        filter keys may come from callers."""
        allowed = self.columns()
        unknown = sorted(str(name) for name in filters if name not in allowed)
        if unknown:
            names = ", ".join(map(repr, unknown))
            raise InvalidQuery(f"cannot filter {self.table.name} by {names}")
        return [Condition(name, "eq", value) for name, value in filters.items()]

    async def _page(
        self, conditions: Sequence[Condition], limit: int, cursor: str | None
    ) -> Page[E]:
        """One page in id order, on the statement cached for these conditions' shape."""
        if limit < 1:
            raise InvalidQuery(f"limit must be at least 1, got {limit}")
        where = bind_where(conditions)
        params = where.params
        if cursor is not None:
            params["p_cursor"] = decode_cursor(cursor)

        def build() -> Executable:
            clauses = where.clauses(self.table)
            if cursor is not None:
                clauses.append(self.table.c.id > bindparam("p_cursor"))
            # One extra row tells whether another page exists without a second query.
            return (select(self.table).where(*clauses).order_by(self.table.c.id)
                    .limit(limit + 1))

        stmt = cached_statement(
            (self.table.name, f"page {where.shape} {cursor is not None} {limit}"), build)
        items = await self._many(stmt, params)
        if len(items) > limit:
            return Page(items[:limit], encode_cursor(items[limit - 1].id))
        return Page(items, None)

    async def _one_of(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> E | None:
        result = await self._execute(stmt, params)
        row = result.mappings().one_or_none()
        if row is None:
            return None
        entity = self._from_row(row)
        self._known.remember(self.table.name, entity)  # the one a caller may update next
        return entity

    async def _many(self, stmt: Executable, params: Mapping[str, Any] | None = None
                    ) -> builtins.list[E]:
        result = await self._execute(stmt, params)
        return [self._from_row(row) for row in result.mappings().all()]

    async def _execute(self, stmt: Executable, params: Mapping[str, Any] | None = None
                       ) -> Result[Any]:
        with translate_errors():
            return await self._session.execute(stmt, params)

    async def _write(self, stmt: Executable, values: Mapping[str, Any],
                     params: Mapping[str, Any] | None = None) -> Result[Any]:
        """Execute a write so that a constraint violation leaves the unit usable: in a
        savepoint on Postgres, which aborts the whole transaction on a failed statement.
        SQLite backs out only the failed statement, so it needs none (two statements saved).
        """
        try:
            with translate_errors():
                if self._dialect() == "sqlite":
                    return await self._session.execute(stmt, params)
                async with self._session.begin_nested():
                    return await self._session.execute(stmt, params)
        except IntegrityError as error:
            raise self._integrity_error(error, values) from error

    def _dialect(self) -> str:
        return str(self._session.get_bind().dialect.name)

    def _insert_or_nothing(self) -> Executable:
        """INSERT ... ON CONFLICT DO NOTHING RETURNING id, in the engine's own dialect;
        built once per table and dialect, executed with the row as parameters."""
        dialect = self._dialect()
        key = (self.table.name, f"insert_or_nothing_{dialect}")
        found = _STATEMENTS.get(key)
        if found is not None:
            return found
        insert: Callable[[Table], Any]
        if dialect == "sqlite":
            insert = sqlite.insert
        elif dialect == "postgresql":
            insert = postgresql.insert
        else:
            raise NotImplementedError(f"insert-or-nothing is not implemented for {dialect}")
        stmt = reusable(insert(self.table).on_conflict_do_nothing().returning(self.table.c.id))
        _STATEMENTS[key] = stmt
        return stmt
