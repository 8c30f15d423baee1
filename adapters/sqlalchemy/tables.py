"""The schema, as SQLAlchemy Core tables. Alembic migrations must create exactly this."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
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
from sqlalchemy.types import TypeDecorator

# Named constraints so migrations and autogenerate comparisons are deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

ID_LENGTH = 26  # a ULID


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


conversations = Table(
    "conversations",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("owner_id", String(128), nullable=False),
    Column("contact", String(128), nullable=False),
    Column("channel", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("last_message_at", UtcDateTime(), nullable=False),
    Column("version", Integer, nullable=False),
    # At most one open conversation per owner and contact; closed ones are unlimited.
    Index(
        "uq_conversations_open_owner_contact",
        "owner_id",
        "contact",
        unique=True,
        sqlite_where=text("status = 'open'"),
        postgresql_where=text("status = 'open'"),
    ),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column(
        "conversation_id",
        String(ID_LENGTH),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("owner_id", String(128), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("type", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("from_address", String(128), nullable=False),
    Column("to_address", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider_sid", String(64), nullable=True),
    # Unique: at most one reply per inbound message (the reply job's idempotency key).
    Column(
        "reply_to_id",
        String(ID_LENGTH),
        ForeignKey("messages.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("error_code", String(32), nullable=True),
    Column("metadata", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("version", Integer, nullable=False),
    UniqueConstraint("provider_sid"),
    UniqueConstraint("reply_to_id"),
    # Conversation history and its keyset pagination.
    Index("ix_messages_conversation_id_id", "conversation_id", "id"),
)
