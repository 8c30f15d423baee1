"""ArqJobQueue and arq's Worker: the worker contract on a real Redis, then what only arq shows.

Redis database 15 (the ``redis_url`` fixture) is flushed before and after every test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.worker import Worker

from adapters.arq_queue import ArqJobQueue
from adapters.arq_queue.worker import CTX_KEY, ArqTaskRuntime, worker_options
from application.errors import QueueUnavailable
from application.job_policy import JobPolicy
from application.ports.job_queue import Job
from tests.conftest import free_port
from tests.contracts.worker import CONFIG, MAX_ATTEMPTS, Handler, WorkerContract

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


class ArqHarness:
    """arq's own Worker in burst mode: it returns once the queue's sorted set is empty."""

    def __init__(self, queue: ArqJobQueue, job_timeout: float = CONFIG.job_timeout) -> None:
        self.queue = queue
        self.job_timeout = job_timeout

    def worker(self, handlers: Mapping[str, Handler], **overrides: Any) -> Worker:
        policy = JobPolicy(self.job_timeout, CONFIG.backoff_base, CONFIG.backoff_max)
        runtime = ArqTaskRuntime(handlers, self.queue, policy)
        options = worker_options(self.queue, job_timeout=self.job_timeout,
                                 concurrency=CONFIG.concurrency,
                                 shutdown_grace=CONFIG.shutdown_grace)
        options.update(burst=True, poll_delay=0.01, handle_signals=False,
                       ctx={CTX_KEY: runtime}, **overrides)
        return Worker(**options)

    async def drain(self, handlers: Mapping[str, Handler], timeout: float = 30.0) -> None:
        worker = self.worker(handlers)
        try:
            await asyncio.wait_for(worker.main(), timeout)
        finally:
            await worker.close()


@pytest.fixture
async def flushed_redis(redis_url: str) -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    yield redis_url
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def make_queue(flushed_redis: str) -> AsyncIterator[Callable[..., ArqJobQueue]]:
    made: list[ArqJobQueue] = []

    def make(**options: Any) -> ArqJobQueue:
        queue = ArqJobQueue(flushed_redis, **{"max_attempts": MAX_ATTEMPTS, **options})
        made.append(queue)
        return queue

    yield make
    for queue in made:
        await queue.close()


class TestArqWorker(WorkerContract):
    @pytest.fixture
    def harness(self, make_queue: Callable[..., ArqJobQueue]) -> ArqHarness:
        return ArqHarness(make_queue())


# --- the producer side -----------------------------------------------------------------


async def test_unreachable_redis_is_queue_unavailable() -> None:
    queue = ArqJobQueue(f"redis://127.0.0.1:{free_port()}/15")
    with pytest.raises(QueueUnavailable, match="arq queue"):
        await queue.enqueue("t", {})
    for call in (queue.ping, queue.depth, queue.list_dead, queue.purge):
        with pytest.raises(QueueUnavailable):
            await call()
    await queue.close()


async def test_closed_queue_is_unavailable(make_queue: Callable[..., ArqJobQueue]) -> None:
    queue = make_queue()
    await queue.ping()
    await queue.close()
    with pytest.raises(QueueUnavailable):
        await queue.enqueue("t", {})


@pytest.mark.parametrize("payload", [{"when": time}, {"nan": float("nan")}, {"s": {1, 2}}])
async def test_unserialisable_payload_is_refused(
    make_queue: Callable[..., ArqJobQueue], payload: Any
) -> None:
    queue = make_queue()
    with pytest.raises((TypeError, ValueError)):
        await queue.enqueue("t", payload)
    assert await queue.depth() == 0


async def test_replay_frees_the_key_arq_keeps_for_a_failed_job(
    make_queue: Callable[..., ArqJobQueue],
) -> None:
    # arq keeps a failed job's result, which blocks its _job_id; replay must not be blocked.
    queue = make_queue()
    harness = ArqHarness(queue)
    runs: list[int] = []

    async def fails_then_works(job: Job) -> None:
        runs.append(job.attempt)
        if len(runs) <= MAX_ATTEMPTS:
            raise RuntimeError("down")

    await queue.enqueue("t", {}, dedup_key="k")
    await harness.drain({"t": fails_then_works})
    assert await queue.enqueue("t", {}, dedup_key="k") is None  # the kept result holds it
    [dead] = await queue.list_dead()
    assert await queue.replay(dead.id)
    await harness.drain({"t": fails_then_works})
    assert runs == [1, 2, 3, 1]
    assert await queue.dead_count() == 0


# --- consumers -------------------------------------------------------------------------


async def test_two_workers_run_every_job_once_and_never_together(
    make_queue: Callable[..., ArqJobQueue],
) -> None:
    queue = make_queue()
    expected = {await queue.enqueue("t", {"n": n}) for n in range(150)}
    running: set[str] = set()
    seen: list[str] = []
    overlaps: list[str] = []

    async def handle(job: Job) -> None:
        if job.id in running:
            overlaps.append(job.id)
        running.add(job.id)
        await asyncio.sleep(0.002)
        running.discard(job.id)
        seen.append(job.id)

    harness = ArqHarness(queue)
    workers = [harness.worker({"t": handle}) for _ in range(2)]
    try:
        await asyncio.wait_for(asyncio.gather(*(w.main() for w in workers)), 60)
    finally:
        for worker in workers:
            await worker.close()
    assert overlaps == []
    assert len(seen) == 150 and set(seen) == expected
    assert all(w.jobs_complete > 0 for w in workers), "one worker took everything"


# A worker process that takes one job and hangs in it until killed.
CRASHING_WORKER = """
import asyncio, sys
from arq.worker import Worker
from adapters.arq_queue import ArqJobQueue
from adapters.arq_queue.worker import CTX_KEY, ArqTaskRuntime, worker_options
from application.job_policy import JobPolicy

async def hang(job):
    print("started", job.id, job.attempt, flush=True)
    await asyncio.sleep(3600)

async def main(url, timeout):
    queue = ArqJobQueue(url, max_attempts=3)
    runtime = ArqTaskRuntime({"hang": hang}, queue, JobPolicy(timeout, 0.1, 0.1))
    options = worker_options(queue, job_timeout=timeout, concurrency=1,
                             shutdown_grace=0)
    options.update(poll_delay=0.01, handle_signals=False, ctx={CTX_KEY: runtime})
    await Worker(**options).main()

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


async def test_a_killed_workers_job_runs_again_once_its_in_progress_key_expires(
    make_queue: Callable[..., ArqJobQueue],
) -> None:
    queue = make_queue()
    job_timeout = 0.5  # arq's in-progress key then lives 0.5 + 1 (our margin) + 10 s
    job_id = await queue.enqueue("hang", {"message_id": "m-1"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_WORKER, queue.redis_url, str(job_timeout),
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)  # type: ignore[union-attr]
        assert line.decode().split() == ["started", job_id, "1"], await proc.stderr.read()  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    killed_at = time.monotonic()
    seen: list[Job] = []

    async def finish(job: Job) -> None:
        seen.append(job)

    await ArqHarness(queue, job_timeout=job_timeout).drain({"hang": finish}, timeout=40)
    [job] = seen
    assert (job.id, job.attempt, dict(job.payload)) == (job_id, 2, {"message_id": "m-1"})
    # Not before the lease (the in-progress key) ran out: no second run while it held.
    assert time.monotonic() - killed_at >= 10
    assert await queue.depth() == 0
