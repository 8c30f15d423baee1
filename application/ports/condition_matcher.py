"""``Condition`` objects evaluated in Python, with SQL's semantics (NULL matches nothing).

The reference meaning of ``Repository.query`` for adapters that filter rows in memory: the
in-memory fake, and the Supabase adapter for rows a unit of work has not committed yet.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from application.ports.repository import Condition

Predicate = Callable[[object], bool]


@lru_cache(maxsize=256)
def like_regex(pattern: str, star_is_wildcard: bool = False) -> re.Pattern[str]:
    """SQL LIKE with backslash escapes: ``%`` any run, ``_`` one character.

    ``star_is_wildcard``: PostgREST also reads ``*`` as ``%``.
    """
    many = "%*" if star_is_wildcard else "%"
    parts: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            parts.append(re.escape(next(chars, "\\")))
        elif ch in many:
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def plain(value: object) -> Any:
    """Enums compare by value; naive datetimes are refused, as every backend does."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime) and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware datetime")
    return value


def predicate(op: str, value: object, star_is_wildcard: bool = False) -> Predicate:
    if op == "is_null":
        return lambda v: (v is None) is value
    if value is None:  # eq/neq with None: IS NULL / IS NOT NULL
        return (lambda v: v is None) if op == "eq" else (lambda v: v is not None)
    if op == "in":
        assert isinstance(value, Collection)
        wanted = [plain(v) for v in value]
        return lambda v: v is not None and plain(v) in wanted
    if op == "like":
        regex = like_regex(str(value), star_is_wildcard)
        return lambda v: v is not None and regex.fullmatch(str(plain(v))) is not None
    target = plain(value)
    checks: dict[str, Callable[[Any], bool]] = {
        "eq": lambda v: v == target,
        "neq": lambda v: v != target,
        "gt": lambda v: v > target,
        "gte": lambda v: v >= target,
        "lt": lambda v: v < target,
        "lte": lambda v: v <= target,
    }
    check = checks[op]
    return lambda v: v is not None and check(plain(v))


def matcher(
    conditions: Sequence[Condition], *, star_is_wildcard: bool = False
) -> Callable[[object], bool]:
    """A predicate over entities that is true when every condition holds."""
    tests = [(c.column, predicate(c.op, c.value, star_is_wildcard)) for c in conditions]
    return lambda entity: all(test(getattr(entity, column)) for column, test in tests)
