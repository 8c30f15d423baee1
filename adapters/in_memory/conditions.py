"""``Condition`` objects as Python predicates with SQL's semantics (NULL matches nothing)."""

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
def like_regex(pattern: str) -> re.Pattern[str]:
    """SQL LIKE with backslash escapes: ``%`` any run, ``_`` one character."""
    parts: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            parts.append(re.escape(next(chars, "\\")))
        elif ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def _plain(value: object) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime) and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware datetime")
    return value


def _predicate(op: str, value: object) -> Predicate:
    if op == "is_null":
        return lambda v: (v is None) is value
    if value is None:  # eq/neq with None: IS NULL / IS NOT NULL
        return (lambda v: v is None) if op == "eq" else (lambda v: v is not None)
    if op == "in":
        assert isinstance(value, Collection)
        wanted = [_plain(v) for v in value]
        return lambda v: v is not None and v in wanted
    if op == "like":
        regex = like_regex(str(value))
        return lambda v: v is not None and regex.fullmatch(str(v)) is not None
    target = _plain(value)
    compare: dict[str, Callable[[Any], bool]] = {
        "eq": lambda v: v == target,
        "neq": lambda v: v != target,
        "gt": lambda v: v > target,
        "gte": lambda v: v >= target,
        "lt": lambda v: v < target,
        "lte": lambda v: v <= target,
    }
    check = compare[op]
    return lambda v: v is not None and check(_plain(v))


def matcher(conditions: Sequence[Condition]) -> Callable[[object], bool]:
    """A predicate over entities that is true when every condition holds."""
    tests = [(c.column, _predicate(c.op, c.value)) for c in conditions]
    return lambda entity: all(test(getattr(entity, column)) for column, test in tests)
