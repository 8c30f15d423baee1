"""``Condition`` objects as SQLAlchemy expressions. Columns are checked by the caller."""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, false

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


def _bound(column: Any, op: str, name: str) -> ColumnElement[bool]:
    param: Any = bindparam(name, expanding=op == "in")
    if op == "like":
        return column.like(param, escape=LIKE_ESCAPE)  # type: ignore[no-any-return]
    if op == "in":
        return column.in_(param)  # type: ignore[no-any-return]
    return _BUILDERS[op](column, param)


def _literal_shape(condition: Condition) -> bool:
    """Whether the value changes the SQL itself (NULL tests, an empty IN), not a parameter."""
    value = condition.value
    return (condition.op == "is_null" or value is None
            or (condition.op == "in" and not value))


def bound_where(
    table: Table, conditions: Sequence[Condition]
) -> tuple[tuple[Any, ...], list[ColumnElement[bool]], dict[str, Any]]:
    """(shape, expressions, parameters): the expressions take the values as named
    parameters, so conditions of one shape give one statement, built and hashed once."""
    shape: list[Any] = []
    clauses: list[ColumnElement[bool]] = []
    params: dict[str, Any] = {}
    for n, condition in enumerate(conditions):
        column = table.c[condition.column]
        if _literal_shape(condition):
            shape.append((condition.column, condition.op, bool(condition.value)))
            clauses.append(_BUILDERS[condition.op](column, condition.value))
            continue
        name = f"w{n}"
        shape.append((condition.column, condition.op))
        clauses.append(_bound(column, condition.op, name))
        value = condition.value
        params[name] = ([_plain(v) for v in value] if condition.op == "in"  # type: ignore[attr-defined]
                        else _plain(value))
    return tuple(shape), clauses, params
