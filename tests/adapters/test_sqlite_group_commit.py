"""Units of work on loop sessions share one COMMIT per loop iteration, and keep their own
meaning: a commit returns once durable, a rollback undoes that unit alone, and a failed
shared COMMIT fails every unit that was in it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, exc, insert, text

from adapters.sqlalchemy.loop_sqlite import LoopSessionFactory
from tests.adapters.loop_sessions import loop_sessions

metadata = MetaData()
parents = Table("parents", metadata, Column("id", Integer, primary_key=True))
rows = Table(
    "rows", metadata,
    Column("id", Integer, primary_key=True),
    Column("parent_id", Integer, ForeignKey("parents.id")),
    Column("body", String(20)),
)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[LoopSessionFactory]:
    async with loop_sessions(tmp_path / "batch.db", metadata) as factory:
        yield factory


@pytest.fixture
def commits(sessions: LoopSessionFactory) -> list[str]:
    """Every COMMIT SQLite was asked to run, seen by the connection's trace callback."""
    seen: list[str] = []
    with sessions.engine.connect() as connection:  # the engine's one pooled connection
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        dbapi.set_trace_callback(
            lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None)
    return seen


def stored(sessions: LoopSessionFactory) -> list[int]:
    """The ids another connection sees: what is durable, not what the batch holds."""
    path = sessions.engine.url.database
    assert path is not None
    with sqlite3.connect(path) as other:
        return [r[0] for r in other.execute("SELECT id FROM rows ORDER BY id")]


async def write(sessions: LoopSessionFactory, row_id: int, *, commit: bool = True,
                parent: int | None = None) -> None:
    session = sessions()
    try:
        await session.execute(insert(rows), {"id": row_id, "parent_id": parent})
        if commit:
            await session.commit()
            # Durable once commit() returned: another connection reads it.
            assert row_id in stored(sessions)
    finally:
        await session.close()


async def test_concurrent_units_share_one_commit(sessions: LoopSessionFactory,
                                                 commits: list[str]) -> None:
    await asyncio.gather(*(write(sessions, n) for n in range(40)))
    assert stored(sessions) == list(range(40))
    assert 1 <= len(commits) <= 4  # one per loop iteration the units ran in, not 40


async def test_a_unit_rolled_back_leaves_the_others_of_its_batch(
        sessions: LoopSessionFactory) -> None:
    await asyncio.gather(*(write(sessions, n, commit=n % 3 != 0) for n in range(12)))
    assert stored(sessions) == [n for n in range(12) if n % 3 != 0]


async def test_a_failed_commit_fails_every_unit_in_it(sessions: LoopSessionFactory) -> None:
    setup = sessions()
    await setup.execute(insert(parents), {"id": 1})
    await setup.commit()
    await setup.close()

    async def defer_checks() -> None:
        # Foreign keys checked at COMMIT: a unit's bad row fails the shared COMMIT.
        session = sessions()
        await session.execute(text("PRAGMA defer_foreign_keys = ON"))
        await session.commit()

    outcomes = await asyncio.gather(
        defer_checks(), write(sessions, 1, parent=1), write(sessions, 2, parent=99),
        write(sessions, 3, parent=1), return_exceptions=True)
    assert all(isinstance(o, exc.IntegrityError) for o in outcomes), outcomes
    assert stored(sessions) == []
    await write(sessions, 4, parent=1)  # the next batch starts clean
    assert stored(sessions) == [4]


async def test_a_unit_inside_across_an_await_holds_the_batch(
        sessions: LoopSessionFactory, commits: list[str]) -> None:
    slow = sessions()
    await slow.execute(insert(rows), {"id": 100})
    quick = [asyncio.create_task(write(sessions, n)) for n in range(3)]
    await asyncio.sleep(0.05)
    assert not any(t.done() for t in quick) and stored(sessions) == []  # all wait for it
    await slow.commit()
    await slow.close()
    await asyncio.gather(*quick)
    assert stored(sessions) == [0, 1, 2, 100]


async def test_a_unit_whose_savepoint_is_gone_fails_and_lets_the_next_in(
        sessions: LoopSessionFactory) -> None:
    session = sessions()
    await session.execute(insert(rows), {"id": 1})
    await session.execute(text("COMMIT"))  # ends the transaction under the batch's feet
    with pytest.raises(exc.OperationalError, match="no such savepoint"):
        await session.commit()
    await session.close()
    await asyncio.wait_for(write(sessions, 2), 2)  # not stuck behind the failed unit
    assert 2 in stored(sessions)
