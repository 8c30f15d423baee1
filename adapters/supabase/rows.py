"""Rows <-> PostgREST JSON, and ``Condition`` both as PostgREST filters and as
Python predicates (for the unit's own, not yet committed, rows)."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from postgrest.base_request_builder import BaseFilterRequestBuilder

from application.ports.condition_matcher import matcher as match_all
from application.ports.repository import Condition

Row = dict[str, Any]
B = TypeVar("B", bound=BaseFilterRequestBuilder[Any])


def wire_time(value: datetime) -> str:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware datetime")
    return value.astimezone(UTC).isoformat()


def parse_time(text: str) -> datetime:
    # PostgREST renders timestamptz in the session's zone; callers always get UTC.
    return datetime.fromisoformat(text).astimezone(UTC)


def wire_value(value: object) -> str:
    """A filter value as PostgREST text."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return wire_time(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def wire_row(row: Mapping[str, Any], times: Collection[str], json_columns: Collection[str]
             ) -> Row:
    """An entity's row as PostgREST JSON: ISO timestamps, JSON columns copied now (the
    caller may mutate its dict after the call)."""
    out = dict(row)
    for name in times:
        if out[name] is not None:
            out[name] = wire_time(out[name])
    for name in json_columns:
        out[name] = json.loads(json.dumps(out[name]))
    return out


def parsed_row(row: Mapping[str, Any], times: Collection[str]) -> dict[str, Any]:
    """A PostgREST row with its timestamps as aware UTC datetimes."""
    out = dict(row)
    for name in times:
        if out[name] is not None:
            out[name] = parse_time(out[name])
    return out


def apply_filter(builder: B, condition: Condition) -> B:
    """Add one (already validated) condition to a PostgREST request."""
    column, op, value = condition.column, condition.op, condition.value
    if op == "is_null" or (value is None and op in ("eq", "neq")):
        is_null = value if op == "is_null" else op == "eq"
        return builder.filter(column, "is", "null") if is_null else (
            builder.not_.filter(column, "is", "null"))
    if op == "in":
        assert isinstance(value, Collection)
        return builder.in_(column, [wire_value(v) for v in value])
    if op == "like":
        return builder.filter(column, "like", str(value))
    return builder.filter(column, op, wire_value(value))


def matcher(conditions: Sequence[Condition]) -> Callable[[object], bool]:
    """True for an entity every condition holds for; ``*`` is a LIKE wildcard, as in PostgREST."""
    return match_all(conditions, star_is_wildcard=True)
