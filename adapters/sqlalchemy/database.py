"""The database a SQLAlchemy URL names: its session factory, readiness check and closer.

A SQLite file runs on the event loop's thread (``loop_sqlite.py``); every other URL (an
in-memory SQLite database, PostgreSQL through asyncpg) through SQLAlchemy's async engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from adapters.sqlalchemy.engine import (
    async_url,
    create_engine_for,
    make_session_factory,
    ping,
    sqlite_file,
    sync_url,
)
from adapters.sqlalchemy.loop_sqlite import LoopSessionFactory, create_loop_engine


@dataclass(frozen=True)
class Database:
    sessions: Callable[[], Any]  # what SqlaUnitOfWork takes
    ping: Callable[[], Awaitable[None]]
    dispose: Callable[[], Awaitable[None]]


def open_database(url: str, *, pool_size: int = 10, pool_timeout: float = 10.0) -> Database:
    """Builds engines and opens nothing: connections are made on first use."""
    parsed = async_url(url)
    path = sqlite_file(parsed) if parsed.get_backend_name() == "sqlite" else None
    if path is not None:
        engine = create_loop_engine(path, sync_url(url), pool_size=pool_size)
        factory = LoopSessionFactory(engine, lock_timeout=pool_timeout)
        return Database(factory, factory.ping, factory.dispose)
    async_engine = create_engine_for(url, pool_size=pool_size, pool_timeout=pool_timeout)

    async def check() -> None:
        await ping(async_engine)

    return Database(make_session_factory(async_engine), check, async_engine.dispose)
