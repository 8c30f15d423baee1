"""The generic repository port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Page(Generic[T_co]):
    """One page of a keyset listing. ``next_cursor`` is None on the last page."""

    items: Sequence[T_co]
    next_cursor: str | None


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

    async def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        filters: Mapping[str, object] | None = None,
    ) -> Page[T]: ...
