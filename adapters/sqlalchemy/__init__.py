"""SQLAlchemy (async) persistence adapter: SQLite through aiosqlite, Postgres through asyncpg."""

from adapters.sqlalchemy.engine import create_engine_for, make_session_factory, ping, sync_url
from adapters.sqlalchemy.repositories import SqlaConversationRepository, SqlaMessageRepository
from adapters.sqlalchemy.unit_of_work import SqlaUnitOfWork

__all__ = [
    "SqlaConversationRepository",
    "SqlaMessageRepository",
    "SqlaUnitOfWork",
    "create_engine_for",
    "make_session_factory",
    "ping",
    "sync_url",
]
