"""Every persistence backend behind one fixture, for tests that compare or sweep them.

``backend`` is parametrised over memory, SQLAlchemy on SQLite, SQLAlchemy on PostgreSQL
(asyncpg), raw psycopg2 and Supabase (the official client against the PostgREST double),
each on a freshly migrated database of its own. ``Backend.wipe`` empties it again, so a
property test can reuse one database across its examples.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from adapters.in_memory.repositories import InMemoryStore, Tables
from adapters.in_memory.unit_of_work import InMemoryUnitOfWork
from adapters.psycopg.pool import ConnectionPool
from adapters.psycopg.unit_of_work import PsycopgUnitOfWork
from adapters.sqlalchemy.engine import create_engine_for, make_session_factory
from adapters.sqlalchemy.unit_of_work import SqlaUnitOfWork
from adapters.supabase import SupabaseConnection, SupabaseUnitOfWork
from application.ports.unit_of_work import UnitOfWork
from tests.adapters.alembic_helpers import migrate
from tests.fakes.postgrest import PostgrestDouble

BACKENDS = ["memory", "sqlite", "sqlalchemy-postgres", "psycopg", "supabase"]
POSTGRES_BACKENDS = ["sqlalchemy-postgres", "psycopg", "supabase"]
# JWT-shaped like Supabase's keys; a test-only value.
SERVICE_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.aW50ZWdyaXR5LXRlc3Q"
_DELETE_ALL = "DELETE FROM messages; DELETE FROM conversations"


@dataclass(frozen=True)
class Backend:
    name: str
    uow: Callable[[], UnitOfWork]
    wipe: Callable[[], Awaitable[None]]


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("integrity") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


def _wipe_postgres(dsn: str) -> Callable[[], Awaitable[None]]:
    async def wipe() -> None:
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(_DELETE_ALL)
        conn.close()

    return wipe


@pytest.fixture(params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Path
) -> AsyncIterator[Backend]:
    name: str = request.param
    if name == "memory":
        store = InMemoryStore()

        async def wipe_memory() -> None:
            store.committed = Tables()

        yield Backend(name, lambda: InMemoryUnitOfWork(store), wipe_memory)
        return
    if name == "sqlite":
        path = tmp_path / "app.db"
        shutil.copyfile(migrated_sqlite, path)
        engine = create_engine_for(f"sqlite:///{path}")

        async def wipe_sqlite() -> None:
            with sqlite3.connect(path) as conn:
                conn.executescript(_DELETE_ALL)
            conn.close()

        sessions = make_session_factory(engine)
        yield Backend(name, lambda: SqlaUnitOfWork(sessions), wipe_sqlite)
        await engine.dispose()
        return
    dsn: str = request.getfixturevalue("postgres_database")
    migrate(dsn)
    if name == "sqlalchemy-postgres":
        engine = create_engine_for(dsn)
        pg_sessions = make_session_factory(engine)
        yield Backend(name, lambda: SqlaUnitOfWork(pg_sessions), _wipe_postgres(dsn))
        await engine.dispose()
    elif name == "psycopg":
        pool = ConnectionPool(dsn, min_size=1, max_size=4, timeout=10)
        yield Backend(name, lambda: PsycopgUnitOfWork(pool), _wipe_postgres(dsn))
        await pool.close()
    else:
        with PostgrestDouble(keys=(SERVICE_KEY,)) as postgrest:
            postgrest.use_database(dsn)
            connection = SupabaseConnection(postgrest.base_url, SERVICE_KEY)
            try:
                yield Backend(name, lambda: SupabaseUnitOfWork(connection), _wipe_postgres(dsn))
            finally:
                await connection.aclose()
                # Close the double's connections before the database is dropped.
                postgrest.use_database(None)
