"""SQLite files through the loop-thread sessions the embedded defaults use (open_database).

The whole repository contract runs on them; then what is particular to them: the write
lock is waited for without blocking the loop, a lock held too long is a storage failure,
and several processes writing one file lose nothing.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.sqlalchemy.database import Database, open_database
from adapters.sqlalchemy.loop_sqlite import LoopSessionFactory
from adapters.sqlalchemy.unit_of_work import SqlaUnitOfWork
from application.errors import StorageUnavailable
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from tests.adapters.test_sqlalchemy_repositories import migrated_template  # noqa: F401
from tests.contracts.repositories import RepositoryContract, UowFactory, conversation, message


@pytest.fixture
async def database(tmp_path: Path, migrated_template: Path) -> AsyncIterator[Database]:  # noqa: F811
    path = tmp_path / "app.db"
    shutil.copyfile(migrated_template, path)
    database = open_database(f"sqlite:///{path}", pool_size=4, pool_timeout=1.0)
    yield database
    await database.dispose()


@pytest.fixture
def uow_factory(database: Database) -> UowFactory:
    return lambda: SqlaUnitOfWork(database.sessions)


class TestLoopSqliteRepositories(RepositoryContract):
    pass


def test_a_sqlite_file_gets_loop_sessions(database: Database) -> None:
    assert isinstance(database.sessions, LoopSessionFactory)


async def test_connections_never_wait_inside_sqlite(database: Database) -> None:
    session = database.sessions()
    try:
        rows = await session.execute(text("PRAGMA busy_timeout"))
        assert rows.scalar() == 0
        assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
    finally:
        await session.close()


async def test_a_held_write_lock_is_waited_for_on_the_loop(uow_factory: UowFactory) -> None:
    conv = conversation()
    holder = uow_factory()
    await holder.__aenter__()
    await holder.repository(ConversationRepository).create(
        conv
    )  # holds the write lock, uncommitted
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    async def second_writer() -> None:
        async with uow_factory() as uow:
            await uow.repository(MessageRepository).create(message(conv.id))
            await uow.commit()

    tick_task = asyncio.create_task(ticker())
    writer = asyncio.create_task(second_writer())
    await asyncio.sleep(0.1)
    assert not writer.done()  # it waits for the lock...
    assert ticks >= 3  # ...while the loop keeps running other tasks
    await holder.commit()
    await holder.__aexit__(None, None, None)
    await asyncio.wait_for(writer, 5)
    tick_task.cancel()
    async with uow_factory() as uow:
        assert await uow.repository(MessageRepository).count() == 1


async def test_a_lock_held_past_the_timeout_is_a_storage_failure(
    uow_factory: UowFactory,
) -> None:
    holder = uow_factory()
    await holder.__aenter__()
    await holder.repository(ConversationRepository).create(conversation())
    try:
        with pytest.raises(StorageUnavailable):
            async with uow_factory() as uow:
                await uow.repository(MessageRepository).count()
    finally:
        await holder.__aexit__(None, None, None)


def _write_rows(path: str, worker: int, count: int) -> None:
    async def run() -> None:
        database = open_database(f"sqlite:///{path}", pool_size=4, pool_timeout=10.0)
        factory = lambda: SqlaUnitOfWork(database.sessions)  # noqa: E731
        conv = conversation(contact=f"whatsapp:+551199999000{worker}")
        async with factory() as uow:
            await uow.repository(ConversationRepository).create(conv)
            await uow.commit()

        async def writer(n: int) -> None:
            async with factory() as uow:
                await uow.repository(MessageRepository).count({"conversation_id": conv.id})
                await uow.repository(MessageRepository).create(
                    message(conv.id, body=f"{worker}/{n}")
                )
                await uow.commit()

        await asyncio.gather(*(writer(n) for n in range(count)))
        await database.dispose()

    asyncio.run(run())


async def test_several_processes_writing_one_file_lose_nothing(
    tmp_path: Path, migrated_template: Path  # noqa: F811
) -> None:
    path = tmp_path / "app.db"
    shutil.copyfile(migrated_template, path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_rows, args=(str(path), w, 150)) for w in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        await asyncio.to_thread(proc.join, 90)
        assert proc.exitcode == 0
    database = open_database(f"sqlite:///{path}")
    try:
        async with SqlaUnitOfWork(database.sessions) as uow:
            assert await uow.repository(MessageRepository).count() == 450
            assert await uow.repository(ConversationRepository).count() == 3
    finally:
        await database.dispose()
