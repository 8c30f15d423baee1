"""How a module declares an entity's persistence, once, for every backend.

An ``EntitySpec`` names the table, its columns, unique keys (and the application error
each maps to), indexes and the repository port the unit of work hands out for it. Every
persistence adapter builds its schema and statements from it; the Alembic migrations
stay the deployed schema, and a test checks they match the declarations.

Stdlib only: this is read by adapters, never the other way round.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

E = TypeVar("E")


class ColumnType(enum.StrEnum):
    STRING = "string"  # bounded: ``length`` is required
    TEXT = "text"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    FLOAT = "float"
    DATETIME = "datetime"  # timezone-aware UTC; naive values are refused
    JSON = "json"  # never filterable: equality differs between backends


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    length: int | None = None
    nullable: bool = False
    # "table.column" this column refers to, and what happens to it when that row goes.
    references: str | None = None
    on_delete: str | None = None  # "CASCADE" | "SET NULL" | None


@dataclass(frozen=True, slots=True)
class UniqueKey:
    """A unique key and the error raised when a write would break it.

    ``where``: a partial key, unique only among rows whose column equals the value (for
    example one *open* conversation per contact). ``error`` gets the row being written.
    """

    columns: tuple[str, ...]
    error: Callable[[Mapping[str, Any]], Exception]
    where: tuple[str, str] | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Index:
    columns: tuple[str, ...]
    name: str | None = None


@dataclass(frozen=True, slots=True)
class EntitySpec(Generic[E]):
    """One entity's persistence. The entity has ``id`` (a ULID string) and ``version``.

    ``to_row``/``from_row`` convert between the entity and a row of plain values (str,
    int, float, bool, aware datetime, JSON-able dict/list, None); the defaults in
    ``dataclass_rows`` cover a dataclass whose fields are those plus ``StrEnum``s.
    ``port`` is what ``UnitOfWork.repository(port)`` answers with this entity's
    repository; ``None`` means the generic ``Repository[E]`` only, asked for by entity
    type (``uow.repository_for(Invoice)``).
    """

    entity: type[E]
    table: str
    columns: tuple[Column, ...]
    to_row: Callable[[E], dict[str, Any]]
    from_row: Callable[[Mapping[str, Any]], E]
    unique: tuple[UniqueKey, ...] = ()
    indexes: tuple[Index, ...] = ()
    port: type | None = None
    # Raised when a write breaks a key no UniqueKey names (the primary key included).
    conflict_error: Callable[[Mapping[str, Any]], Exception] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)
