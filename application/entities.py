"""How a module declares an entity's persistence, once, for every backend.

An ``EntitySpec`` names the table, its columns, unique keys (and the application error
each maps to), indexes and the repository port the unit of work hands out for it. Every
persistence adapter builds its schema and statements from it; the Alembic migrations
stay the deployed schema, and a test checks they match the declarations.

Stdlib only: this is read by adapters, never the other way round.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from application.errors import ConcurrencyError

E = TypeVar("E")
F = TypeVar("F")


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

    @property
    def filterable(self) -> frozenset[str]:
        """Columns callers may filter on: every one but JSON (equality differs by backend)."""
        return frozenset(c.name for c in self.columns if c.type is not ColumnType.JSON)

    def columns_of(self, kind: ColumnType) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.type is kind)

    def conflict(self, text: str, row: Mapping[str, Any]) -> Exception:
        """The error for a unique violation the database described in ``text``.

        ``text`` holds the constraint name (PostgreSQL) or the ``table.column`` list
        (SQLite); a key neither names (the primary key) gets ``conflict_error``.
        """
        for key in self.unique:
            columns = ", ".join(f"{self.table}.{c}" for c in key.columns)
            if key_name(self.table, key) in text or text.rstrip().endswith(": " + columns):
                return key.error(row)
        if self.conflict_error is not None:
            return self.conflict_error(row)
        return ConcurrencyError(f"{self.table} {row.get('id')} conflicts with a stored row")


def key_name(table: str, key: UniqueKey) -> str:
    """The constraint (or partial unique index) name of ``key`` in the deployed schema."""
    return key.name or f"uq_{table}_{'_'.join(key.columns)}"


def index_name(table: str, index: Index) -> str:
    return index.name or f"ix_{table}_{'_'.join(index.columns)}"


def dataclass_rows(
    entity: type[E],
) -> tuple[Callable[[E], dict[str, Any]], Callable[[Mapping[str, Any]], E]]:
    """``to_row``/``from_row`` for a dataclass whose fields are the columns: enum members
    are stored as their value and rebuilt from it (also inside ``X | None``)."""
    hints = typing.get_type_hints(entity)
    names = [f.name for f in dataclasses.fields(entity)]  # type: ignore[arg-type]
    enums: dict[str, type[enum.Enum]] = {}
    for name in names:
        hint = hints[name]
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        for option in options:
            if isinstance(option, type) and issubclass(option, enum.Enum):
                enums[name] = option

    def to_row(item: E) -> dict[str, Any]:
        row = {name: getattr(item, name) for name in names}
        for name in enums:
            value = row[name]
            if isinstance(value, enum.Enum):
                row[name] = value.value
        return row

    def from_row(row: Mapping[str, Any]) -> E:
        values = {name: row[name] for name in names}
        for name, kind in enums.items():
            if values[name] is not None:
                values[name] = kind(values[name])
        return entity(**values)

    return to_row, from_row


class Identified(Protocol):
    """What every persisted entity has: a ULID ``id`` and an optimistic ``version``."""

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...


class EntityRegistry(Generic[F]):
    """Which repository ``F`` serves each registered entity: by port, entity type or table.

    Each persistence backend keeps one (``F`` being its repository class) and its unit
    of work hands out repositories through it.
    """

    def __init__(self, entries: Iterable[tuple[EntitySpec[Any], F]]) -> None:
        self._by_entity: dict[type, tuple[EntitySpec[Any], F]] = {}
        self._by_port: dict[type, tuple[EntitySpec[Any], F]] = {}
        self._by_table: dict[str, tuple[EntitySpec[Any], F]] = {}
        for spec, factory in entries:
            entry = (spec, factory)
            self._by_entity[spec.entity] = entry
            self._by_table[spec.table] = entry
            if spec.port is not None:
                self._by_port[spec.port] = entry

    @property
    def specs(self) -> tuple[EntitySpec[Any], ...]:
        return tuple(spec for spec, _ in self._by_table.values())

    def for_port(self, port: type) -> tuple[EntitySpec[Any], F]:
        found = self._by_port.get(port)
        if found is None:
            raise LookupError(
                f"no entity is registered for the repository port {port.__qualname__}; "
                "declare it in a module's entities (EntitySpec.port)"
            )
        return found

    def for_entity(self, entity: type) -> tuple[EntitySpec[Any], F]:
        found = self._by_entity.get(entity)
        if found is None:
            raise LookupError(
                f"no entity {entity.__qualname__} is registered; declare its EntitySpec "
                "in a module's entities"
            )
        return found

    def for_table(self, table: str) -> tuple[EntitySpec[Any], F] | None:
        return self._by_table.get(table)


def registry(
    specs: Iterable[EntitySpec[Any]], generic: F, extensions: Mapping[type, F] | None = None
) -> EntityRegistry[F]:
    """A registry serving every spec with ``generic``, or with the extension registered
    for its port (a module's repository with its own queries)."""
    extensions = extensions or {}
    return EntityRegistry(
        (spec, extensions.get(spec.port, generic) if spec.port else generic) for spec in specs
    )
