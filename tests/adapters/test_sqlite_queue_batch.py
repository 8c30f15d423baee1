"""The SQLite queue's writes on the loop share one COMMIT per loop iteration, and each
still returns only once it is durable; a failed COMMIT fails every write of its batch."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.sqlite_queue import SqliteJobQueue
from adapters.sqlite_queue.batch import LoopBatch
from adapters.sqlite_queue.connection import NonBlockingConnection, open_connection


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[SqliteJobQueue]:
    q = SqliteJobQueue(str(tmp_path / "queue.db"), poll_interval=0.05)
    # The first calls create the file on the queue thread, then the loop's connection.
    await q.enqueue("warm", {}, dedup_key="warm-1")
    await q.enqueue("warm", {}, dedup_key="warm-2")
    yield q
    await q.close()


def queued(path: str) -> int:
    """Jobs another connection sees: what is durable, not what a batch holds."""
    with sqlite3.connect(path) as other:
        return int(other.execute("SELECT count(*) FROM jobs WHERE task = 'job'").fetchone()[0])


async def test_enqueues_share_a_commit_and_each_is_durable_on_return(
        queue: SqliteJobQueue) -> None:
    fast: Any = queue._fast
    assert isinstance(fast, NonBlockingConnection)
    commits: list[str] = []
    fast.set_trace_callback(lambda s: commits.append(s) if s == "COMMIT" else None)

    async def enqueue(n: int) -> None:
        await queue.enqueue("job", {"n": n}, dedup_key=f"job-{n}")
        assert queued(queue.path) >= 1  # durable once enqueue returned

    await asyncio.gather(*(enqueue(n) for n in range(30)))
    assert queued(queue.path) == 30
    assert 1 <= len(commits) <= 3  # one per loop iteration, not 30


async def test_a_receive_cancelled_while_its_claim_commits_gives_the_job_back(
        queue: SqliteJobQueue) -> None:
    while await queue.receive(10, 0):  # the warm-up jobs out of the way
        pass
    await queue.enqueue("job", {"n": 1})
    receiving = asyncio.create_task(queue.receive(1, 0))
    await asyncio.sleep(0)  # the claim ran, its COMMIT has not
    assert not receiving.done()
    receiving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiving
    for _ in range(100):  # given back on the queue thread once the claim committed
        jobs = await queue.receive(1, 0)
        if jobs:
            break
        await asyncio.sleep(0.02)
    assert [job.payload for job in jobs] == [{"n": 1}]


class FailingCommit(NonBlockingConnection):
    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("disk I/O error")
        return super().execute(sql, *args)


async def test_a_failed_commit_fails_every_write_of_the_batch(tmp_path: Path) -> None:
    path = str(tmp_path / "queue.db")
    open_connection(path).close()  # the schema
    conn = sqlite3.connect(path, timeout=0, isolation_level=None, factory=FailingCommit)
    batch = LoopBatch(conn)
    insert = ("INSERT INTO jobs (id, task, payload, headers, state, available_at, enqueued_at)"
              " VALUES (?, 'job', '{}', '{}', 'queued', 0, 0)")
    batch.write(lambda c: c.execute(insert, ("a",)))
    first = batch.durable()
    with pytest.raises(sqlite3.IntegrityError):  # a failing write undoes itself alone
        batch.write(lambda c: c.execute(insert, ("a",)))
    batch.write(lambda c: c.execute(insert, ("b",)))
    second = batch.durable()
    outcomes = await asyncio.gather(first, second, return_exceptions=True)
    assert [str(o) for o in outcomes] == ["disk I/O error"] * 2
    assert not conn.in_transaction and queued(path) == 0
    conn.close()
