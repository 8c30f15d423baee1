"""A job enqueued while a receiver of the same SQLite queue waits is inserted already
leased and handed over (adapters/sqlite_queue/handoff.py): one write transaction, and
still delivered at least once when the receiver goes away or the process dies."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.sqlite_queue import SqliteJobQueue
from application.ports.job_queue import Job
from tests.adapters.sqlite_locks import write_lock_held


@pytest.fixture
async def make_queue(tmp_path: Path) -> AsyncIterator[Callable[..., SqliteJobQueue]]:
    made: list[SqliteJobQueue] = []

    def make(**options: Any) -> SqliteJobQueue:
        queue = SqliteJobQueue(str(tmp_path / "queue.db"), poll_interval=0.05, **options)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        await queue.close()


def row(queue: SqliteJobQueue, job_id: str) -> tuple[Any, ...]:
    with contextlib.closing(sqlite3.connect(queue.path)) as conn:
        found = conn.execute("SELECT state, attempt, leased_until FROM jobs WHERE id = ?",
                             (job_id,)).fetchone()
    assert found is not None
    return tuple(found)


async def waiting_receive(queue: SqliteJobQueue, wait: float = 5.0) -> asyncio.Task[list[Job]]:
    task = asyncio.create_task(queue.receive(4, wait_seconds=wait))
    for _ in range(200):  # until its claim found nothing and it waits
        await asyncio.sleep(0.005)
        if queue._handoff.wants():
            return task
    raise AssertionError("the receive never started waiting")


async def test_a_job_enqueued_while_a_receiver_waits_is_handed_over_leased(
        make_queue: Callable[..., SqliteJobQueue]) -> None:
    queue = make_queue(visibility_timeout=30.0)
    receiving = await waiting_receive(queue)
    job_id = await queue.enqueue("t", {"n": 1}, dedup_key="k-1", headers={"correlation_id": "c"})
    assert job_id is not None
    # Leased by the enqueue's own transaction, before the receiver ran again.
    state, attempt, leased_until = row(queue, job_id)
    assert (state, attempt) == ("running", 1)
    assert leased_until == pytest.approx(time.time() + 30.0, abs=5.0)

    [job] = await asyncio.wait_for(receiving, 5)
    assert (job.id, job.task, job.payload, job.attempt) == (job_id, "t", {"n": 1}, 1)
    assert (job.dedup_key, job.headers) == ("k-1", {"correlation_id": "c"})
    await queue.ack(job)
    assert row(queue, job_id)[0] == "done"


async def test_a_delayed_job_is_not_handed_over(
        make_queue: Callable[..., SqliteJobQueue]) -> None:
    queue = make_queue()
    receiving = await waiting_receive(queue, wait=0.3)
    job_id = await queue.enqueue("t", {"n": 1}, delay_seconds=60)
    assert job_id is not None and row(queue, job_id)[:2] == ("queued", 0)
    assert await receiving == []


async def test_a_job_handed_to_a_receive_cancelled_meanwhile_goes_back_to_the_queue(
        make_queue: Callable[..., SqliteJobQueue]) -> None:
    queue = make_queue()
    receiving = await waiting_receive(queue)
    # Another process holds the write lock: the enqueue, already set on a handoff, waits
    # for it on the queue thread while the receive is cancelled.
    with write_lock_held(queue.path):
        enqueueing = asyncio.create_task(queue.enqueue("t", {"n": 1}))
        await asyncio.sleep(0.05)
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiving
    job_id = await asyncio.wait_for(enqueueing, 10)
    assert job_id is not None

    # Released as if never claimed: any consumer (here another process's) gets its first
    # delivery, long before the 60 s lease would have expired.
    other = make_queue()
    [job] = await asyncio.wait_for(other.receive(4, wait_seconds=5), 10)
    assert (job.id, job.attempt) == (job_id, 1)


async def test_a_handed_job_whose_receiver_died_comes_back_when_its_lease_expires(
        make_queue: Callable[..., SqliteJobQueue]) -> None:
    dying = make_queue(visibility_timeout=0.3)
    receiving = await waiting_receive(dying)
    job_id = await dying.enqueue("t", {"n": 1})
    [handed] = await receiving
    assert handed.attempt == 1  # ... and never acked: its process is gone

    other = make_queue(visibility_timeout=30.0)  # another process on the same file
    [job] = await asyncio.wait_for(other.receive(4, wait_seconds=5), 10)
    assert (job.id, job.attempt) == (job_id, 2)


async def test_closing_returns_jobs_handed_but_not_taken(
        make_queue: Callable[..., SqliteJobQueue]) -> None:
    queue = make_queue()
    receiving = await waiting_receive(queue)
    job_id = await queue.enqueue("t", {"n": 1})
    await queue.close()  # before the receiver ran again
    with contextlib.suppress(Exception):
        await receiving
    assert row(queue, job_id)[:2] == ("queued", 0)
