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


# An IN list up to this long binds one parameter per value (the list's length is part of
# the statement's shape); a longer one expands at execution, which renders SQL each time.
_FIXED_IN = 16


def _literal_shape(condition: Condition) -> bool:
    """Whether the value changes the SQL itself (NULL tests, an empty IN), not a parameter."""
    value = condition.value
    return (condition.op == "is_null" or value is None
            or (condition.op == "in" and not value))


def where_shape(conditions: Sequence[Condition]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(shape, parameters) of ``where_clauses``: conditions of one shape give one statement,
    built and hashed once; the values travel as its parameters."""
    shape: list[Any] = []
    params: dict[str, Any] = {}
    for n, condition in enumerate(conditions):
        name, value = f"w{n}", condition.value
        if _literal_shape(condition):
            shape.append((condition.column, condition.op, bool(value)))
        elif condition.op == "in":
            assert isinstance(value, Collection)
            values = [_plain(v) for v in value]
            if len(values) <= _FIXED_IN:
                shape.append((condition.column, "in", len(values)))
                params.update({f"{name}_{i}": v for i, v in enumerate(values)})
            else:
                shape.append((condition.column, "in", "expanding"))
                params[name] = values
        else:
            shape.append((condition.column, condition.op))
            params[name] = _plain(value)
    return tuple(shape), params


def where_clauses(table: Table, conditions: Sequence[Condition]) -> list[ColumnElement[bool]]:
    """One expression per condition, over the parameters ``where_shape`` names."""
    clauses: list[ColumnElement[bool]] = []
    for n, condition in enumerate(conditions):
        column: Any = table.c[condition.column]
        name, value = f"w{n}", condition.value
        if _literal_shape(condition):
            clauses.append(_BUILDERS[condition.op](column, value))
        elif condition.op == "in":
            assert isinstance(value, Collection)
            clauses.append(column.in_([bindparam(f"{name}_{i}") for i in range(len(value))])
                           if len(value) <= _FIXED_IN
                           else column.in_(bindparam(name, expanding=True)))
        elif condition.op == "like":
            clauses.append(column.like(bindparam(name), escape=LIKE_ESCAPE))
        else:
            clauses.append(_BUILDERS[condition.op](column, bindparam(name)))
    return clauses
