from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from adapters.in_memory.job_queue import InMemoryJobQueue
from application.errors import QueueUnavailable
from tests.contracts.job_queue import JobQueueContract
from tests.contracts.worker import MAX_ATTEMPTS, RunnerHarness, WorkerContract


class TestInMemoryJobQueue(JobQueueContract):
    @pytest.fixture
    async def make_queue(self) -> AsyncIterator[Callable[..., InMemoryJobQueue]]:
        made: list[InMemoryJobQueue] = []

        def make(*, poll_interval: float = 0.0, **options: Any) -> InMemoryJobQueue:
            # poll_interval means nothing here: every wake-up is an in-process event.
            queue = InMemoryJobQueue(**options)
            made.append(queue)
            return queue

        yield make
        for queue in made:
            await queue.close()


async def test_done_job_frees_its_dedup_key_after_retention() -> None:
    queue = InMemoryJobQueue(done_retention_seconds=0.5)
    await queue.enqueue("t", {}, dedup_key="k")
    [job] = await queue.receive(1, 0)
    await queue.ack(job)
    assert await queue.enqueue("t", {}, dedup_key="k") is None
    await asyncio.sleep(0.6)  # lets the retention window pass
    assert await queue.enqueue("t", {}, dedup_key="k") is not None
    assert await queue.depth() == 1


async def test_close_wakes_a_waiting_receive() -> None:
    queue = InMemoryJobQueue()
    waiting = asyncio.create_task(queue.receive(1, wait_seconds=20))
    await asyncio.sleep(0.05)
    await queue.close()
    with pytest.raises(QueueUnavailable):
        await asyncio.wait_for(waiting, timeout=5)


class TestInMemoryWorker(WorkerContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[RunnerHarness]:
        queue = InMemoryJobQueue(max_attempts=MAX_ATTEMPTS)
        yield RunnerHarness(queue)
        await queue.close()
