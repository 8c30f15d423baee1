"""The repository contract on SQLite through SQLAlchemy, with the schema from Alembic."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.base import SqlaRepository
from adapters.sqlalchemy.engine import (
    UNAVAILABLE_MESSAGE,
    async_url,
    create_engine_for,
    make_session_factory,
    ping,
    sync_url,
)
from adapters.sqlalchemy.unit_of_work import SqlaUnitOfWork
from application.errors import StorageUnavailable
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from tests.contracts.entities import EntityContract, create_module_tables, registry_for
from tests.contracts.repositories import (
    RepositoryContract,
    UowFactory,
    conversation,
    message,
)

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
REGISTRY = registry_for("sqlalchemy", SqlaRepository)


def migrate(url: str) -> None:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Migrate once, copy per test: every test still runs on the schema Alembic built.
    path = tmp_path_factory.mktemp("template") / "app.db"
    migrate(f"sqlite:///{path}")
    create_module_tables(f"sqlite:///{path}")
    return path


@pytest.fixture
async def engine(tmp_path: Path, migrated_template: Path) -> AsyncIterator[AsyncEngine]:
    path = tmp_path / "app.db"
    shutil.copyfile(migrated_template, path)
    engine = create_engine_for(f"sqlite:///{path}")
    yield engine
    await engine.dispose()


@pytest.fixture
def uow_factory(engine: AsyncEngine) -> UowFactory:
    sessions = make_session_factory(engine)
    return lambda: SqlaUnitOfWork(sessions, REGISTRY)


class TestSqlaRepositories(RepositoryContract):
    pass


class TestSqlaEntities(EntityContract):
    pass


async def test_sqlite_connections_are_configured(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert (await pragma("PRAGMA journal_mode")).scalar() == "wal"
        assert (await pragma("PRAGMA foreign_keys")).scalar() == 1
        assert (await pragma("PRAGMA busy_timeout")).scalar() == 5000
        assert (await pragma("PRAGMA synchronous")).scalar() == 1  # NORMAL


async def test_concurrent_writers_do_not_fail(uow_factory: UowFactory) -> None:
    conv = conversation()
    async with uow_factory() as uow:
        await uow.repository(ConversationRepository).create(conv)
        await uow.commit()

    async def writer(n: int) -> None:
        # Read first, then write: the pattern that fails with SQLITE_BUSY on lock upgrade
        # under deferred transactions.
        for _ in range(3):
            async with uow_factory() as uow:
                await uow.repository(MessageRepository).count({"conversation_id": conv.id})
                await uow.repository(MessageRepository).create(message(conv.id, body=f"writer {n}"))
                await uow.commit()

    await asyncio.gather(*(writer(n) for n in range(10)))
    async with uow_factory() as uow:
        assert await uow.repository(MessageRepository).count() == 30


async def test_engine_creates_directory_and_file_on_first_use_only(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "app.db"
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        assert engine.dialect.driver == "aiosqlite"
        assert not path.parent.exists()
        await ping(engine)
        assert path.exists()
    finally:
        await engine.dispose()


async def settle_threads(engine: AsyncEngine) -> None:
    """Dispose, then wait for aiosqlite's worker threads to end.

    An invalidated aiosqlite connection is force-closed with ``stop()``, which finishes
    on its own thread later; if the test's loop closed first, that thread's callback
    would hit a closed loop. Joining keeps error-path tests from leaking it.
    """
    await engine.dispose()
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 2.0)


async def test_unreachable_database_raises_storage_unavailable(tmp_path: Path) -> None:
    # A directory where the database file should be: SQLite cannot open it.
    secret_path = tmp_path / "s3cret-dir"
    secret_path.mkdir()
    engine = create_engine_for(f"sqlite:///{secret_path}")
    try:
        with pytest.raises(StorageUnavailable) as info:
            await ping(engine)
        assert str(info.value) == UNAVAILABLE_MESSAGE
        assert "s3cret" not in str(info.value)
        with pytest.raises(StorageUnavailable):
            async with SqlaUnitOfWork(make_session_factory(engine)) as uow:
                await uow.repository(MessageRepository).count()
    finally:
        await settle_threads(engine)


async def test_unusable_directory_raises_storage_unavailable_on_use(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    engine = create_engine_for(f"sqlite:///{blocker / 'sub' / 'app.db'}")  # no error yet
    try:
        with pytest.raises(StorageUnavailable):
            await ping(engine)
    finally:
        await settle_threads(engine)


async def test_missing_schema_is_a_storage_failure(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        async with SqlaUnitOfWork(make_session_factory(engine)) as uow:
            with pytest.raises(StorageUnavailable):
                await uow.repository(ConversationRepository).get_by_id("x")
    finally:
        await settle_threads(engine)


async def test_a_unit_cannot_be_open_twice_at_once(uow_factory: UowFactory) -> None:
    uow = uow_factory()
    async with uow:
        with pytest.raises(RuntimeError):
            await uow.__aenter__()


@pytest.mark.parametrize(
    ("given", "expected_async", "expected_sync"),
    [
        ("sqlite:///./var/app.db", "sqlite+aiosqlite:///./var/app.db", "sqlite:///./var/app.db"),
        (
            "sqlite+aiosqlite:////abs/app.db",
            "sqlite+aiosqlite:////abs/app.db",
            "sqlite:////abs/app.db",
        ),
        (
            "postgresql://u:p%40ss@db:5432/app",
            "postgresql+asyncpg://u:p%40ss@db:5432/app",
            "postgresql+psycopg2://u:p%40ss@db:5432/app",
        ),
        (
            "postgres://u@db/app",
            "postgresql+asyncpg://u@db/app",
            "postgresql+psycopg2://u@db/app",
        ),
        (
            "postgresql+asyncpg://u@db/app",
            "postgresql+asyncpg://u@db/app",
            "postgresql+psycopg2://u@db/app",
        ),
    ],
)
def test_url_translation(given: str, expected_async: str, expected_sync: str) -> None:
    assert async_url(given).render_as_string(hide_password=False) == expected_async
    assert sync_url(given) == expected_sync


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
async def test_in_memory_sqlite_engine_works(url: str) -> None:
    engine = create_engine_for(url)
    try:
        await ping(engine)
        async with engine.connect() as connection:
            assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
    finally:
        await engine.dispose()
