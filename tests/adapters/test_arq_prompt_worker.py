"""PromptWorker: arq's Worker woken by announcements and finished jobs, on a real Redis.

The worker contract runs on it unchanged (delayed retries come due through the fallback
poll). The other tests set the fallback poll far beyond their timeouts, so a pass means a
wake-up, not a poll, started the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.arq_queue import ArqJobQueue
from adapters.arq_queue.claim import OneTripClaim
from adapters.arq_queue.prompt_worker import PromptWorker
from adapters.arq_queue.worker import CTX_KEY, ArqTaskRuntime, ArqWorkerRunner, worker_options
from application.ports.job_queue import Job
from tests.contracts.worker import CONFIG, MAX_ATTEMPTS, Handler, WorkerContract

pytestmark = pytest.mark.integration

NEVER = 3600.0


def prompt_worker(queue: ArqJobQueue, handlers: Mapping[str, Handler], *, idle_poll: float,
                  concurrency: int = CONFIG.concurrency) -> PromptWorker:
    runtime = ArqTaskRuntime(handlers, queue, CONFIG.policy)
    options = worker_options(queue, job_timeout=CONFIG.job_timeout,
                             concurrency=concurrency, shutdown_grace=CONFIG.shutdown_grace)
    options.update(handle_signals=False, ctx={CTX_KEY: runtime})
    return PromptWorker(**options, wake_channel=queue.wake_channel, idle_poll=idle_poll)


class Running:
    """A worker running in the background, stopped the way ``wta worker`` stops it."""

    def __init__(self, worker: PromptWorker) -> None:
        self.runner = ArqWorkerRunner(worker)
        self.task = asyncio.create_task(self.runner.run())

    async def stop(self) -> None:
        self.runner.stop()
        await asyncio.wait_for(self.task, 30)


class PromptHarness:
    def __init__(self, queue: ArqJobQueue) -> None:
        self.queue = queue

    async def drain(self, handlers: Mapping[str, Handler], timeout: float = 30.0) -> None:
        running = Running(prompt_worker(self.queue, handlers, idle_poll=0.05))
        try:
            async with asyncio.timeout(timeout):
                while await self.queue.depth() > 0 and not running.task.done():
                    await asyncio.sleep(0.02)
        finally:
            await running.stop()


@pytest.fixture
async def make_queue(redis_url: str) -> AsyncIterator[Callable[[], ArqJobQueue]]:
    admin = aioredis.Redis.from_url(redis_url)
    await admin.flushdb()
    made: list[ArqJobQueue] = []

    def make() -> ArqJobQueue:
        made.append(ArqJobQueue(redis_url, max_attempts=MAX_ATTEMPTS))
        return made[-1]

    yield make
    for queue in made:
        await queue.close()
    await admin.flushdb()
    await admin.aclose()


class TestPromptWorker(WorkerContract):
    @pytest.fixture
    def harness(self, make_queue: Callable[[], ArqJobQueue]) -> PromptHarness:
        return PromptHarness(make_queue())


async def _subscribed(redis_url: str, channel: str, listeners: int = 1) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        while dict(await client.pubsub_numsub(channel)).get(channel.encode(), 0) < listeners:
            await asyncio.sleep(0.01)
    finally:
        await client.aclose()


async def test_an_announced_job_wakes_an_idle_worker(
    make_queue: Callable[[], ArqJobQueue], redis_url: str
) -> None:
    queue = make_queue()
    done: asyncio.Queue[Any] = asyncio.Queue()

    async def handler(job: Job) -> None:
        await done.put(job.payload)

    running = Running(prompt_worker(queue, {"t": handler}, idle_poll=NEVER))
    try:
        # Idle: it polled once, found nothing, and now waits on its channel.
        await asyncio.wait_for(_subscribed(redis_url, queue.wake_channel), 10)
        await queue.enqueue("t", {"n": 1})
        assert await asyncio.wait_for(done.get(), 10) == {"n": 1}
    finally:
        await running.stop()


async def test_a_finished_job_frees_its_slot_for_the_next_at_once(
    make_queue: Callable[[], ArqJobQueue],
) -> None:
    queue = make_queue()
    # Queued before the worker listens: no announcement reaches it, only finished jobs can.
    for n in range(5):
        await queue.enqueue("t", {"n": n})
    seen: list[int] = []

    async def handler(job: Job) -> None:
        seen.append(job.payload["n"])

    running = Running(prompt_worker(queue, {"t": handler}, idle_poll=NEVER, concurrency=1))
    try:
        async with asyncio.timeout(10):
            while len(seen) < 5:
                await asyncio.sleep(0.01)
    finally:
        await running.stop()
    assert sorted(seen) == list(range(5))


async def test_a_job_whose_data_was_flushed_leaves_its_dedup_key_free_for_the_sweep(
    make_queue: Callable[[], ArqJobQueue], redis_url: str
) -> None:
    # The race a FLUSHDB can leave behind: the job id still queued, its data gone. arq fails
    # it as "expired"; no failed result may then hold its key against the sweep's copy.
    queue = make_queue()
    assert await queue.enqueue("t", {"n": 1}, dedup_key="t:1") == "t:1"
    admin = aioredis.Redis.from_url(redis_url)
    try:
        assert await admin.delete("arq:job:t:1") == 1
        seen: list[Any] = []

        async def handler(job: Job) -> None:
            seen.append(job.payload)

        await PromptHarness(queue).drain({"t": handler})
        assert seen == [] and await admin.exists("arq:result:t:1") == 0
        assert await queue.enqueue("t", {"n": 2}, dedup_key="t:1") == "t:1"
        await PromptHarness(queue).drain({"t": handler})
        assert seen == [{"n": 2}]
    finally:
        await admin.aclose()


async def test_jobs_running_here_are_not_claimed_again_on_each_read(
    make_queue: Callable[[], ArqJobQueue], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read of the queue returns the running jobs too; only the others are claimed (a
    slot and a Redis round trip each)."""
    claimed: list[str] = []
    one_trip = OneTripClaim.__call__

    async def recording(self: OneTripClaim, job_id: str) -> int | None:
        claimed.append(job_id)
        return await one_trip(self, job_id)

    monkeypatch.setattr(OneTripClaim, "__call__", recording)
    queue = make_queue()
    release = asyncio.Event()
    started: asyncio.Queue[int] = asyncio.Queue()

    async def handler(job: Job) -> None:
        await started.put(job.payload["n"])
        if job.payload["n"] == 1:
            await release.wait()

    first = await queue.enqueue("t", {"n": 1})
    running = Running(prompt_worker(queue, {"t": handler}, idle_poll=0.05, concurrency=2))
    try:
        assert await asyncio.wait_for(started.get(), 10) == 1
        second = await queue.enqueue("t", {"n": 2})
        assert await asyncio.wait_for(started.get(), 10) == 2
        await asyncio.sleep(0.3)  # several more reads (every 0.05 s) while job 1 runs
        release.set()
    finally:
        await running.stop()
    assert claimed == [first, second]


async def test_a_job_claimed_by_another_worker_is_left_to_it(
    make_queue: Callable[[], ArqJobQueue], redis_url: str
) -> None:
    """The one-trip claim refuses a job whose in-progress key another worker holds, and
    takes it once that worker is gone and the key expired."""
    queue = make_queue()
    done: asyncio.Queue[Any] = asyncio.Queue()

    async def handler(job: Job) -> None:
        await done.put(job.payload)

    job_id = await queue.enqueue("t", {"n": 1})
    assert job_id is not None
    admin = aioredis.Redis.from_url(redis_url)
    await admin.psetex(f"arq:in-progress:{job_id}", 1500, b"1")  # another worker's claim
    running = Running(prompt_worker(queue, {"t": handler}, idle_poll=0.05))
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(done.get(), 1.0)
        assert await asyncio.wait_for(done.get(), 10) == {"n": 1}
    finally:
        await running.stop()
        await admin.aclose()


async def test_two_workers_on_one_queue_run_every_job_once(
    make_queue: Callable[[], ArqJobQueue], redis_url: str
) -> None:
    queue = make_queue()
    ran: list[tuple[int, int]] = []

    def handler_for(worker: int) -> Handler:
        async def handler(job: Job) -> None:
            await asyncio.sleep(0.01)
            ran.append((worker, job.payload["n"]))
        return handler

    workers = [Running(prompt_worker(queue, {"t": handler_for(w)}, idle_poll=0.05,
                                     concurrency=20)) for w in (1, 2)]
    try:
        # Both idle and listening first, so both race for every job from the start.
        await asyncio.wait_for(_subscribed(redis_url, queue.wake_channel, listeners=2), 10)
        for n in range(200):
            await queue.enqueue("t", {"n": n})
        async with asyncio.timeout(30):
            while len(ran) < 200:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # a second run of any job would show by now
    finally:
        for running in workers:
            await running.stop()
    assert sorted(n for _, n in ran) == list(range(200))
    assert {w for w, _ in ran} == {1, 2}  # both took jobs
