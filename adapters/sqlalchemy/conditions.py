"""``Condition`` objects as SQLAlchemy expressions. Columns are checked by the caller."""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
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

Build = Callable[[Table], ColumnElement[bool]]


@dataclass(frozen=True, slots=True)
class BoundWhere:
    """Conditions as a statement shape and its parameters: conditions of one shape give
    one statement, built and hashed once, and the values travel as its parameters."""

    shape: tuple[Any, ...]
    params: dict[str, Any]
    _builds: tuple[Build, ...]

    def clauses(self, table: Table) -> list[ColumnElement[bool]]:
        """The expressions over ``params``' names: only needed when the shape is new."""
        return [build(table) for build in self._builds]


def bind_where(conditions: Sequence[Condition]) -> BoundWhere:
    shape: list[Any] = []
    params: dict[str, Any] = {}
    builds: list[Build] = []
    for n, condition in enumerate(conditions):
        item, values, build = _bind(f"w{n}", condition)
        shape.append(item)
        params.update(values)
        builds.append(build)
    return BoundWhere(tuple(shape), params, tuple(builds))


def _bind(name: str, condition: Condition) -> tuple[Any, dict[str, Any], Build]:
    """(shape item, parameters, expression builder) of one condition."""
    column, op, value = condition.column, condition.op, condition.value
    if op == "is_null" or value is None or (op == "in" and not value):
        # The value changes the SQL itself (a NULL test, an empty IN), not a parameter.
        return (column, op, bool(value)), {}, lambda t: _BUILDERS[op](t.c[column], value)
    if op == "in":
        assert isinstance(value, Collection)
        values = [_plain(v) for v in value]
        if len(values) > _FIXED_IN:
            return ((column, op, "expanding"), {name: values},
                    lambda t: t.c[column].in_(bindparam(name, expanding=True)))
        names = [f"{name}_{i}" for i in range(len(values))]
        return ((column, op, len(values)), dict(zip(names, values, strict=True)),
                lambda t: t.c[column].in_([bindparam(x) for x in names]))
    if op == "like":
        return ((column, op), {name: value},
                lambda t: t.c[column].like(bindparam(name), escape=LIKE_ESCAPE))
    return ((column, op), {name: _plain(value)},
            lambda t: _BUILDERS[op](t.c[column], bindparam(name)))
