"""Reusable statements run as their compiled SQL on SQLite's own connection.

On a local SQLite file SQLAlchemy's work around a statement costs more than SQLite's:
about 70 µs per cached statement (cache key, parameter processing, cursor result and its
metadata, event dispatch) against 14 µs for sqlite3 to run the flow's ``get_open``. The
statements the hot paths use are built once and never change, so that work can be done
once too: a statement marked ``reusable`` is compiled by SQLAlchemy, its type processors
looked up, and every later run passes the compiled SQL straight to the DBAPI cursor.

What the shortcut cannot reproduce takes SQLAlchemy's own path: a statement not marked,
textual SQL, expanding IN lists and other post-compile parameters, Python-side column
defaults, and any engine or connection with event listeners (so instrumentation still
sees every statement).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Delete, Insert, Select, Update, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.sql import Executable

S = TypeVar("S", bound=Executable)
Processor = Callable[[Any], Any] | None

_OPTION = "wta_reusable"
_MAX_PREPARED = 4000  # statements are built once each; the bound guards against misuse
_REQUIRED = object()
# Compiler attributes naming work done at execution: parameters rendered then (expanding
# IN lists, literal binds) and Python-side column defaults computed before a write.
_NOT_PREPARABLE = ("literal_execute_params", "post_compile_params", "insert_prefetch",
                   "update_prefetch")


def reusable(statement: S) -> S:
    """``statement``, marked as built once and kept: it may skip SQLAlchemy's execution.

    Only for statements that live as long as the process (a module constant, or one kept
    in a bounded cache): prepared forms are kept by the statement's identity.
    """
    return statement.execution_options(**{_OPTION: True})


class PreparedResult(IteratorResult[Any]):
    """A buffered result with the two cursor attributes the repositories read."""

    rowcount: int
    returns_rows: bool


@dataclass(frozen=True, slots=True)
class Prepared:
    statement: Executable  # kept alive, so the id it is cached under stays its own
    sql: str
    binds: tuple[tuple[str, Processor, Any], ...]  # positional: key, processor, fixed value
    metadata: SimpleResultMetaData | None  # None: the statement returns no rows
    processors: tuple[Processor, ...]
    converts: bool  # some column has a result processor

    def run(self, dbapi: sqlite3.Connection, params: Mapping[str, Any] | None) -> PreparedResult:
        values = []
        for key, processor, fixed in self.binds:
            value = fixed
            if params is not None and key in params:
                value = params[key]
            elif value is _REQUIRED:
                raise exc.ArgumentError(f"a value is required for bind parameter {key!r}")
            values.append(value if processor is None else processor(value))
        try:
            cursor = dbapi.execute(self.sql, values)
            rows = cursor.fetchall() if self.metadata is not None else []
        except sqlite3.Error as error:
            # Wrapped as SQLAlchemy wraps it, so callers' error handling is the same.
            raise exc.DBAPIError.instance(self.sql, values, error, sqlite3.Error) from error
        if rows and self.converts:
            rows = [tuple(value if p is None else p(value)
                          for p, value in zip(self.processors, row, strict=True))
                    for row in rows]
        result = PreparedResult(self.metadata or _NO_ROWS, iter(rows))
        result.rowcount = cursor.rowcount
        result.returns_rows = self.metadata is not None
        return result


_NO_ROWS = SimpleResultMetaData([])


class PreparedStatements:
    """Prepared forms of one dialect's reusable statements, by statement and parameter
    names (an INSERT's columns are the parameters it is executed with)."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        # None: looked at and found unsuitable; SQLAlchemy runs it every time.
        self._prepared: dict[tuple[int, tuple[str, ...]], Prepared | None] = {}

    def execute(
        self, connection: Connection, statement: Executable, params: Mapping[str, Any] | None
    ) -> PreparedResult | None:
        """The statement's result, or None when it must go through SQLAlchemy."""
        if not statement.get_execution_options().get(_OPTION):
            return None
        if connection._has_events or connection.engine._has_events:
            return None
        names = tuple(params) if params else ()
        key = (id(statement), names)
        try:
            prepared = self._prepared[key]
        except KeyError:
            prepared = self._prepare(statement, names)
            if len(self._prepared) < _MAX_PREPARED:
                self._prepared[key] = prepared
        if prepared is None or prepared.statement is not statement:
            return None
        dbapi = connection.connection.dbapi_connection
        return prepared.run(dbapi, params)  # type: ignore[arg-type]

    def _prepare(self, statement: Executable, names: tuple[str, ...]) -> Prepared | None:
        if not isinstance(statement, Select | Insert | Update | Delete):
            return None  # textual SQL: its columns are only known from the cursor
        dialect = self._dialect
        compiled: Any = cast(Any, statement).compile(dialect=dialect, column_keys=list(names))
        if compiled.positiontup is None or any(
                getattr(compiled, name, None) for name in _NOT_PREPARABLE):
            return None
        binds = []
        for key in compiled.positiontup:
            bind = compiled.binds[key]
            if bind.expanding:  # pragma: no cover - post_compile_params holds these
                return None
            fixed = _REQUIRED if bind.required else bind.effective_value
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            binds.append((bind.key, processor, fixed))
        columns = getattr(compiled, "_result_columns", None)
        if columns is None:
            return None
        metadata = SimpleResultMetaData([c[0] for c in columns]) if columns else None
        processors = tuple(c[3].dialect_impl(dialect).result_processor(dialect, None)
                           for c in columns)
        return Prepared(statement, compiled.string, tuple(binds), metadata, processors,
                        any(processors))
