"""SQL built with ``psycopg2.sql``: names are Identifiers, values are always %s placeholders."""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from psycopg2 import sql

from application.ports.repository import Condition


class Where(NamedTuple):
    """A WHERE clause, its parameters, and its shape: the same shape, the same text."""

    clause: sql.Composable
    params: list[Any]
    shape: str


_COMPARISONS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "LIKE"}
TRUE = sql.SQL("TRUE")


def plain(value: Any) -> Any:
    """A value as the driver should bind it: enum members as their text, aware datetimes."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime) and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware datetime")
    return value


def column_list(columns: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, columns))


def equality(filters: Mapping[str, object]) -> Where:
    """``find_by``/``count`` filters, already checked against the declared columns."""
    return conditions([Condition(name, "eq", value) for name, value in filters.items()])


def conditions(items: Sequence[Condition]) -> Where:
    """Checked ``Condition`` objects joined with AND (TRUE when there are none)."""
    parts: list[sql.Composable] = []
    params: list[Any] = []
    shape: list[str] = []
    for condition in items:
        column = sql.Identifier(condition.column)
        op, value = condition.op, condition.value
        # The clause's text depends on the column and the operator only, but for a NULL
        # test, where the value picks IS NULL or IS NOT NULL.
        kind = op
        if op == "is_null" or (op in ("eq", "neq") and value is None):
            null = value if op == "is_null" else op == "eq"
            kind = "null" if null else "not null"
            parts.append(sql.SQL("{} IS NULL" if null else "{} IS NOT NULL").format(column))
        elif op == "in":
            assert isinstance(value, Collection)
            # = ANY(array) is valid for an empty list too, where IN () is a syntax error.
            parts.append(sql.SQL("{} = ANY(%s)").format(column))
            params.append([plain(v) for v in value])
        elif op in ("eq", "neq"):
            parts.append(sql.SQL("{} = %s" if op == "eq" else "{} <> %s").format(column))
            params.append(plain(value))
        else:
            operator = _COMPARISONS[op]
            template = "{} LIKE %s ESCAPE '\\'" if op == "like" else "{} " + operator + " %s"
            parts.append(sql.SQL(template).format(column))
            params.append(plain(value))
        shape.append(f"{condition.column} {kind}")
    if not parts:
        return Where(TRUE, [], "")
    return Where(sql.SQL(" AND ").join(parts), params, ",".join(shape))
