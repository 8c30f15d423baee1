"""Wake-up notes between SQLite queue instances that share a file (as processes do).

Each instance here stands for a process: instances never share the in-process event, so a
consumer learns of another instance's job only through a note or its fallback poll. The
fallback poll is set far beyond each test's timeout, so a pass means a note woke it.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from adapters.sqlite_queue import SqliteJobQueue
from adapters.sqlite_queue.wakeup import wake_directory
from application.errors import QueueUnavailable

pytestmark = pytest.mark.integration

NEVER = 3600.0  # a fallback poll no test waits for


@pytest.fixture
async def make_queue(tmp_path: Path) -> AsyncIterator[Callable[..., SqliteJobQueue]]:
    made: list[SqliteJobQueue] = []

    def make(**options: float) -> SqliteJobQueue:
        queue = SqliteJobQueue(str(tmp_path / "queue.db"), **options)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        await queue.close()


async def _listening(directory: str, count: int) -> None:
    while len(os.listdir(directory)) < count:
        await asyncio.sleep(0.01)


async def test_another_instances_enqueue_wakes_an_idle_consumer(
    make_queue: Callable[..., SqliteJobQueue], tmp_path: Path
) -> None:
    producer, consumer = make_queue(), make_queue(poll_interval=NEVER)
    await producer.ping()  # creates the file and schema
    receiving = asyncio.create_task(consumer.receive(1, wait_seconds=NEVER))
    directory = wake_directory(str(tmp_path / "queue.db"))
    assert directory is not None
    await asyncio.wait_for(_listening(directory, 1), 10)

    job_id = await producer.enqueue("t", {"n": 1})

    jobs = await asyncio.wait_for(receiving, 10)
    assert [job.id for job in jobs] == [job_id]


async def test_every_waiting_consumer_hears_and_one_claims(
    make_queue: Callable[..., SqliteJobQueue], tmp_path: Path
) -> None:
    producer = make_queue()
    consumers = [make_queue(poll_interval=NEVER) for _ in range(2)]
    await producer.ping()
    directory = wake_directory(str(tmp_path / "queue.db"))
    assert directory is not None
    waits = [asyncio.create_task(c.receive(1, wait_seconds=NEVER)) for c in consumers]
    await asyncio.wait_for(_listening(directory, 2), 10)

    first = await producer.enqueue("t", {"n": 1})
    done, pending = await asyncio.wait(waits, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    assert [job.id for job in done.pop().result()] == [first]
    # The other one was woken too, found nothing, and waits on: a second job is its.
    second = await producer.enqueue("t", {"n": 2})
    (other,) = pending
    assert [job.id for job in await asyncio.wait_for(other, 10)] == [second]


async def test_a_dead_listener_is_removed_and_costs_the_producer_nothing(
    make_queue: Callable[..., SqliteJobQueue], tmp_path: Path
) -> None:
    producer = make_queue()
    await producer.ping()
    directory = wake_directory(str(tmp_path / "queue.db"))
    assert directory is not None
    os.makedirs(directory, mode=0o700, exist_ok=True)
    stale = os.path.join(directory, "99999999-dead")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(stale)
    sock.close()  # as after kill -9: the file stays, nobody reads

    assert await producer.enqueue("t", {}) is not None
    assert not os.path.exists(stale)
    assert await producer.depth() == 1


async def test_closing_a_consumer_removes_its_socket(
    make_queue: Callable[..., SqliteJobQueue], tmp_path: Path
) -> None:
    consumer = make_queue(poll_interval=NEVER)
    directory = wake_directory(str(tmp_path / "queue.db"))
    assert directory is not None
    receiving = asyncio.create_task(consumer.receive(1, wait_seconds=NEVER))
    await asyncio.wait_for(_listening(directory, 1), 10)

    await consumer.close()

    with pytest.raises(QueueUnavailable):  # the waiting receive learns the queue closed
        await asyncio.wait_for(receiving, 10)
    assert os.listdir(directory) == []
