"""PostgREST query-string grammar -> psycopg2.sql fragments, for the PostgREST double.

Identifiers are checked against the schema cache and composed with ``sql.Identifier``;
values are always bound parameters. Anything outside the subset raises ``ApiError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg2 import sql

# Query parameters with a meaning of their own; every other one is a column filter.
RESERVED = frozenset({"select", "order", "limit", "offset", "columns", "on_conflict"})
_COMPARISONS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_IS_VALUES = {"null": "NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}
_RANGE_RE = re.compile(r"^(\d+)-(\d*)$")


class ApiError(Exception):
    """An error answered in PostgREST's JSON shape."""

    def __init__(
        self, status: int, code: str, message: str, details: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "details": details, "hint": hint, "message": message}


def parse_error(message: str, details: str | None = None) -> ApiError:
    return ApiError(400, "PGRST100", message, details)


def unknown_column(relation: str, column: str) -> ApiError:
    return ApiError(400, "42703", f"column {relation}.{column} does not exist")


@dataclass(frozen=True)
class Relation:
    """A table (or a function's result) as the schema cache knows it."""

    schema: str
    name: str
    columns: Mapping[str, str] = field(default_factory=dict)  # name -> SQL type
    primary_key: tuple[str, ...] = ()

    def column(self, name: str) -> sql.Composable:
        if name not in self.columns:
            raise unknown_column(self.name, name)
        return sql.Identifier(self.name, name)

    @property
    def qualified(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.name)


def split_list(text: str) -> list[str]:
    """Split ``a,"b,c",d`` on commas outside double quotes; quotes and escapes removed."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise parse_error("unterminated quote in list", text)
    items.append("".join(current))
    return items


def _star_to_percent(pattern: str) -> str:
    # PostgREST accepts * for % so patterns survive URLs without escaping.
    return pattern.replace("*", "%")


def filter_clause(relation: Relation, column: str, expression: str) -> sql.Composable:
    """One ``column=[not.]op.value`` filter as a WHERE fragment."""
    target = relation.column(column)
    negate = expression.startswith("not.")
    if negate:
        expression = expression[len("not.") :]
    op, dot, value = expression.partition(".")
    if not dot:
        raise parse_error(f'"failed to parse filter ({expression})"', f"unexpected end in {column}")
    clause: sql.Composable
    if op in _COMPARISONS:
        clause = sql.SQL("{} {} {}").format(target, sql.SQL(_COMPARISONS[op]), sql.Literal(value))
    elif op in ("like", "ilike"):
        keyword = sql.SQL("LIKE" if op == "like" else "ILIKE")
        clause = sql.SQL("{} {} {}").format(target, keyword, sql.Literal(_star_to_percent(value)))
    elif op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise parse_error(f'"failed to parse filter (in.{value})"', "expected (a,b,...)")
        inner = value[1:-1]
        items = split_list(inner) if inner else []
        clause = (
            sql.SQL("{} IN ({})").format(target, sql.SQL(", ").join(map(sql.Literal, items)))
            if items
            else sql.SQL("FALSE")
        )
    elif op == "is":
        keyword = _IS_VALUES.get(value.lower())
        if keyword is None:
            raise parse_error(f'"failed to parse filter (is.{value})"', "expected null/true/false")
        clause = sql.SQL("{} IS {}").format(target, sql.SQL(keyword))
    else:
        raise parse_error(f'"failed to parse filter ({op}.{value})"', f"unknown operator {op}")
    return sql.SQL("NOT ({})").format(clause) if negate else clause


def where_clause(relation: Relation, params: Sequence[tuple[str, str]]) -> sql.Composable:
    clauses = [filter_clause(relation, k, v) for k, v in params if k not in RESERVED]
    if not clauses:
        return sql.SQL("")
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses)


def select_list(relation: Relation, select: str | None) -> sql.Composable:
    if select is None or select.strip() in ("", "*"):
        return sql.SQL("*")
    names = [name.strip() for name in split_list(select)]
    if any(not name for name in names):
        raise parse_error('"failed to parse select parameter"', select)
    return sql.SQL(", ").join(relation.column(name) for name in names)


def order_clause(relation: Relation, order: str | None) -> sql.Composable:
    if not order:
        return sql.SQL("")
    terms: list[sql.Composable] = []
    for term in split_list(order):
        column, *modifiers = term.split(".")
        parts = [relation.column(column)]
        for modifier in modifiers:
            keyword = {"asc": "ASC", "desc": "DESC", "nullsfirst": "NULLS FIRST",
                       "nullslast": "NULLS LAST"}.get(modifier)
            if keyword is None:
                raise parse_error(f'"failed to parse order ({term})"', f"unexpected {modifier}")
            parts.append(sql.SQL(keyword))
        terms.append(sql.SQL(" ").join(parts))
    return sql.SQL(" ORDER BY ") + sql.SQL(", ").join(terms)


def _non_negative(name: str, text: str) -> int:
    if not text.isdigit():
        raise parse_error(f'"failed to parse {name} parameter ({text})"')
    return int(text)


def requested_range(
    query: Mapping[str, str], headers: Mapping[str, str]
) -> tuple[int, int | None]:
    """(offset, limit) from the Range header, narrowed by limit/offset query parameters."""
    offset, limit = 0, None
    header = headers.get("range")
    if header:
        match = _RANGE_RE.match(header.strip())
        if match is None:
            raise ApiError(416, "PGRST103", "Requested range not satisfiable",
                           f"invalid Range header {header!r}")
        offset = int(match.group(1))
        if match.group(2):
            upper = int(match.group(2))
            if upper < offset:
                raise ApiError(416, "PGRST103", "Requested range not satisfiable")
            limit = upper - offset + 1
    if "offset" in query:
        offset = _non_negative("offset", query["offset"])
    if "limit" in query:
        limit = _non_negative("limit", query["limit"])
    return offset, limit


def prefer(headers: Mapping[str, str]) -> dict[str, str]:
    """``Prefer: return=representation, count=exact`` as a dict."""
    found: dict[str, str] = {}
    for item in headers.get("prefer", "").split(","):
        key, _, value = item.strip().partition("=")
        if key:
            found[key] = value
    return found


def row_columns(relation: Relation, rows: Sequence[Mapping[str, Any]], columns: str | None
                ) -> list[str]:
    """The insert/update column list: ``columns=`` if given, else the body's keys."""
    if columns:
        names = [c.strip() for c in split_list(columns)]
    else:
        names = []
        for row in rows:
            names += [k for k in row if k not in names]
    for name in names:
        relation.column(name)
    if not names:
        raise ApiError(400, "PGRST102", "Empty or invalid json")
    return names
