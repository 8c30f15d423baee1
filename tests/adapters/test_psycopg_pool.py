"""The raw adapter's own parts: lazy pool, bounded waits, DSN handling, errors that leak
nothing. The repository behaviour is in test_psycopg_repositories.py."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg2
import pytest

from adapters.psycopg.dsn import libpq_dsn, sqlalchemy_url
from adapters.psycopg.errors import translate
from adapters.psycopg.pool import ConnectionPool
from adapters.psycopg.unit_of_work import PsycopgUnitOfWork, ping
from application.errors import StorageUnavailable
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from tests.adapters.alembic_helpers import migrate
from tests.conftest import free_port


class CountingConnect:
    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.calls += 1
        return psycopg2.connect(*args, **kwargs)


async def test_building_opens_nothing_and_an_unreachable_server_is_unavailable() -> None:
    connect = CountingConnect()
    dsn = f"postgresql://someone:hunter2@127.0.0.1:{free_port()}/db"
    pool = ConnectionPool(dsn, timeout=2, connect=connect)
    uow = PsycopgUnitOfWork(pool)
    async with uow:
        pass
    assert connect.calls == 0
    with pytest.raises(StorageUnavailable) as info:
        await ping(pool)
    assert connect.calls == 1
    assert "hunter2" not in str(info.value) and "someone" not in str(info.value)
    with pytest.raises(StorageUnavailable):
        async with uow:
            await uow.repository(MessageRepository).count()
    await pool.close()


@pytest.mark.integration
async def test_exhausted_pool_waits_then_refuses_and_hands_over_when_freed(
    postgres_database: str,
) -> None:
    migrate(postgres_database)
    pool = ConnectionPool(postgres_database, max_size=1, timeout=0.3)
    try:
        holder = PsycopgUnitOfWork(pool)
        async with holder:
            await ping(pool)
            await holder.repository(ConversationRepository).count(
                {}
            )  # ... but a unit keeps its connection
            with pytest.raises(StorageUnavailable, match="DATABASE_POOL_MAX_CONN"):
                await asyncio.wait_for(ping(pool), 10)
            waiter = asyncio.create_task(asyncio.wait_for(ping(pool), 10))
            await asyncio.sleep(0)
        await waiter  # the released connection went to the waiting caller
    finally:
        await pool.close()


@pytest.mark.integration
async def test_a_dropped_connection_is_replaced(postgres_database: str) -> None:
    migrate(postgres_database)
    pool = ConnectionPool(postgres_database, max_size=2, timeout=2)
    try:
        async with PsycopgUnitOfWork(pool) as uow:
            await uow.repository(MessageRepository).count()
        # The server ends every session of this database, as a restart would.
        admin = psycopg2.connect(postgres_database)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        admin.close()
        with pytest.raises(StorageUnavailable):
            async with PsycopgUnitOfWork(pool) as uow:
                await uow.repository(MessageRepository).count()
        async with PsycopgUnitOfWork(pool) as uow:
            assert await uow.repository(MessageRepository).count() == 0
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p%40ss@db:5432/app", "postgresql+psycopg2://u:p%40ss@db:5432/app"),
        ("postgres://u@db/app", "postgresql+psycopg2://u@db/app"),
        ("postgresql+asyncpg://u@db/app", "postgresql+psycopg2://u@db/app"),
        ("host=db port=5433 dbname=app user=u password=p@ss",
         "postgresql+psycopg2://u:p%40ss@db:5433/app"),
        ("dbname=app host=/var/run/postgresql sslmode=disable",
         "postgresql+psycopg2:///app?sslmode=disable&host=%2Fvar%2Frun%2Fpostgresql"),
    ],
)
def test_sqlalchemy_url_for_alembic(given: str, expected: str) -> None:
    assert sqlalchemy_url(given) == expected


def test_libpq_dsn_drops_a_driver_suffix() -> None:
    assert libpq_dsn("postgresql+psycopg2://u@h/d") == "postgresql://u@h/d"
    assert libpq_dsn("host=h dbname=d") == "host=h dbname=d"


def test_error_translation_by_sqlstate() -> None:
    class Fake(psycopg2.DatabaseError):
        def __init__(self, code: str) -> None:
            super().__init__("boom")
            self._code = code

        @property
        def pgcode(self) -> str:  # type: ignore[override]
            return self._code

    assert isinstance(translate(Fake("08006")), StorageUnavailable)
    assert isinstance(translate(Fake("42P01")), StorageUnavailable)
    assert translate(psycopg2.IntegrityError("dup")) is None
    assert isinstance(translate(psycopg2.OperationalError("gone")), StorageUnavailable)
