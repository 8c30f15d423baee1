"""SQLAlchemy Core tables built from ``EntitySpec`` declarations.

Alembic migrations must create exactly what this builds for the kernel's entities (a
test compares them); modules' tables join the same process-wide ``metadata`` on first use.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from application.entities import ColumnType, EntitySpec, index_name, key_name

# Named constraints so migrations and autogenerate comparisons are deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


# Every table the process's repositories use, added on first use of its spec.
metadata = new_metadata()


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zone type, so values are stored as naive UTC and made aware again
    on the way out. Naive input is refused: guessing its zone would corrupt data silently.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware datetime")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _type(kind: ColumnType, length: int | None) -> TypeEngine[Any]:
    if kind is ColumnType.STRING:
        if length is None:
            raise ValueError("a STRING column needs a length")
        return String(length)
    simple: dict[ColumnType, TypeEngine[Any]] = {
        ColumnType.TEXT: Text(), ColumnType.INTEGER: Integer(), ColumnType.BOOLEAN: Boolean(),
        ColumnType.FLOAT: Float(), ColumnType.DATETIME: UtcDateTime(), ColumnType.JSON: JSON(),
    }
    return simple[kind]


def _literal(value: str) -> str:
    # A declared constant (never input), quoted as an SQL string literal.
    return "'" + value.replace("'", "''") + "'"


def table_for(spec: EntitySpec[Any], target: MetaData | None = None) -> Table:
    """The table of ``spec`` in ``target`` (the process-wide metadata by default)."""
    target = metadata if target is None else target
    found = target.tables.get(spec.table)
    if found is not None:
        return found
    items: list[Any] = []
    for column in spec.columns:
        args: list[Any] = [_type(column.type, column.length)]
        if column.references:
            args.append(ForeignKey(column.references, ondelete=column.on_delete))
        items.append(Column(column.name, *args, primary_key=column.name == "id",
                            nullable=column.nullable and column.name != "id"))
    for key in spec.unique:
        if key.where is None:
            items.append(UniqueConstraint(*key.columns, name=key.name))
        else:
            condition = text(f"{key.where[0]} = {_literal(key.where[1])}")
            items.append(Index(key_name(spec.table, key), *key.columns, unique=True,
                               sqlite_where=condition, postgresql_where=condition))
    for index in spec.indexes:
        items.append(Index(index_name(spec.table, index), *index.columns))
    return Table(spec.table, target, *items)


def build_metadata(specs: Iterable[EntitySpec[Any]]) -> MetaData:
    """A fresh metadata holding exactly ``specs``' tables (for migrations and tests)."""
    target = new_metadata()
    for spec in specs:
        table_for(spec, target)
    return target
