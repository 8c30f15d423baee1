"""``Condition`` objects as SQLAlchemy expressions. Columns are checked by the caller."""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, false

from application.ports.repository import Condition

# The escape character is spelled out: SQLite has no default, Postgres defaults to it.
LIKE_ESCAPE = "\\"


def _plain(value: object) -> Any:
    # StrEnum members bind as their text on every driver.
    return value.value if isinstance(value, enum.Enum) else value


def _eq(column: Any, value: object) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == _plain(value)  # type: ignore[no-any-return]


def _neq(column: Any, value: object) -> ColumnElement[bool]:
    return column.is_not(None) if value is None else column != _plain(value)  # type: ignore[no-any-return]


def _in(column: Any, value: object) -> ColumnElement[bool]:
    assert isinstance(value, Collection)
    values = [_plain(v) for v in value]
    # An empty IN is not valid SQL everywhere; nothing matches it anyway.
    return column.in_(values) if values else false()


def _is_null(column: Any, value: object) -> ColumnElement[bool]:
    return column.is_(None) if value else column.is_not(None)  # type: ignore[no-any-return]


_BUILDERS: dict[str, Callable[[Any, object], ColumnElement[bool]]] = {
    "eq": _eq,
    "neq": _neq,
    "gt": lambda c, v: c > _plain(v),
    "gte": lambda c, v: c >= _plain(v),
    "lt": lambda c, v: c < _plain(v),
    "lte": lambda c, v: c <= _plain(v),
    "in": _in,
    "like": lambda c, v: c.like(v, escape=LIKE_ESCAPE),
    "is_null": _is_null,
}


def where_clauses(table: Table, conditions: Sequence[Condition]) -> list[ColumnElement[bool]]:
    """One bound expression per condition; values always travel as parameters."""
    return [_BUILDERS[c.op](table.c[c.column], c.value) for c in conditions]
