"""Loop sessions (the embedded defaults' SQLite sessions) on a file holding a test's own
tables, for tests of the SQLite machinery beneath the repositories."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import MetaData

from adapters.sqlalchemy.loop_sqlite import LoopSessionFactory, create_loop_engine


@asynccontextmanager
async def loop_sessions(path: Path, tables: MetaData) -> AsyncIterator[LoopSessionFactory]:
    engine = create_loop_engine(path, f"sqlite:///{path}", pool_size=2)
    tables.create_all(engine)
    factory = LoopSessionFactory(engine, lock_timeout=1.0)
    try:
        yield factory
    finally:
        await factory.dispose()
