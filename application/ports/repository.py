"""The generic repository port."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from application.errors import InvalidQuery

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Page(Generic[T_co]):
    """One page of a keyset listing. ``next_cursor`` is None on the last page."""

    items: Sequence[T_co]
    next_cursor: str | None


OPERATORS = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "in", "like", "is_null"})
# Comparing with NULL is never true in SQL; refuse it rather than return nothing silently.
_NEEDS_VALUE = frozenset({"gt", "gte", "lt", "lte", "like"})


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter of ``Repository.query``: ``column <op> value``.

    ``in`` takes a collection (empty: matches nothing); ``like`` a case-sensitive pattern
    with ``%`` and ``_``, where a backslash escapes the next character; ``is_null`` a bool
    (True: IS NULL, False: IS NOT NULL). As in SQL, a NULL column matches no operator but
    ``is_null``; ``eq``/``neq`` with None mean IS NULL/IS NOT NULL. Datetimes must be
    timezone-aware.
    """

    column: str
    op: str
    value: object = None


def check_conditions(conditions: Sequence[Condition], columns: Collection[str]) -> None:
    """Refuse unknown columns or operators before any query is built (raises InvalidQuery)."""
    for condition in conditions:
        if condition.column not in columns:
            raise InvalidQuery(f"unknown column {condition.column!r}")
        if condition.op not in OPERATORS:
            raise InvalidQuery(f"unknown operator {condition.op!r}")
        if condition.op == "in" and (
            isinstance(condition.value, str | bytes)
            or not isinstance(condition.value, Collection)
        ):
            raise InvalidQuery(f"operator 'in' on {condition.column!r} needs a collection")
        if condition.op == "is_null" and not isinstance(condition.value, bool):
            raise InvalidQuery(f"operator 'is_null' on {condition.column!r} needs True or False")
        if condition.op in _NEEDS_VALUE and condition.value is None:
            raise InvalidQuery(f"operator {condition.op!r} on {condition.column!r} needs a value")
        if condition.op == "like" and not isinstance(condition.value, str):
            raise InvalidQuery(f"operator 'like' on {condition.column!r} needs a string pattern")


_CURSOR_ID = re.compile(r"^[0-9A-Za-z]{1,64}$")


def encode_cursor(last_id: str) -> str:
    """The opaque keyset cursor every adapter hands out: the last id, base64url."""
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        # validate=True: the lenient default would silently drop foreign characters.
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
        last_id = raw.decode("ascii")
    except (binascii.Error, UnicodeError, ValueError) as error:
        raise InvalidQuery("malformed cursor") from error
    # Ids are ULIDs: a decoded NUL or quote must never reach a query (Postgres refuses NUL).
    if not _CURSOR_ID.match(last_id):
        raise InvalidQuery("malformed cursor")
    return last_id


class Repository(Protocol[T]):
    """CRUD over one entity type. Entities carry ``id`` (ULID) and ``version``.

    - ``create`` raises a domain duplicate error when a unique key is taken.
    - ``update`` writes only when the stored version equals ``entity.version``; it returns
      the entity with ``version + 1`` and raises ``ConcurrencyError`` otherwise, changing
      nothing.
    - ``find_by``/``count`` take equality filters on declared columns; an unknown column
      raises ``InvalidQuery`` before any query is built.
    - ``list`` pages by ascending id with an opaque cursor, optionally narrowed by the same
      equality filters: no row is skipped or repeated when rows are inserted between pages.
    """

    async def create(self, entity: T) -> T: ...

    async def get_by_id(self, entity_id: str) -> T | None: ...

    async def update(self, entity: T) -> T: ...

    async def delete(self, entity_id: str) -> bool: ...

    async def find_by(self, **filters: object) -> list[T]: ...

    async def count(self, filters: Mapping[str, object] | None = None) -> int: ...

    async def query(
        self, conditions: Sequence[Condition], *, limit: int = 50, cursor: str | None = None
    ) -> Page[T]:
        """Rows matching every condition, paged like ``list``. Columns are the ones the
        repository declares (its entity's fields but ``metadata``); ``check_conditions``
        runs before any SQL is built."""
        ...

    async def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        filters: Mapping[str, object] | None = None,
    ) -> Page[T]: ...
