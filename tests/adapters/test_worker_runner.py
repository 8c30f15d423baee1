"""The worker runner over the SQLite queue: retries, dead letters, timeouts, leases."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.sqlite_queue.job_queue import SqliteJobQueue
from adapters.worker.runner import PeriodicTask, RunnerConfig, WorkerRunner
from application.errors import PermanentJobError
from application.job_policy import backoff_delay
from application.ports.job_queue import Job

FAST = RunnerConfig(concurrency=2, job_timeout=5.0, backoff_base=0.0, backoff_max=0.0,
                    shutdown_grace=2.0, receive_wait=0.05)


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[SqliteJobQueue]:
    q = SqliteJobQueue(str(tmp_path / "queue.db"), max_attempts=3, visibility_timeout=5.0,
                       poll_interval=0.1)
    yield q
    await q.close()


async def test_a_job_that_always_fails_is_dead_lettered_after_max_attempts(
    queue: SqliteJobQueue,
) -> None:
    attempts: list[int] = []

    async def always_fails(job: Job) -> None:
        attempts.append(job.attempt)
        raise RuntimeError(f"boom on attempt {job.attempt}")

    await queue.enqueue("flaky", {"n": 1})
    await WorkerRunner(queue, {"flaky": always_fails}, FAST).run(burst=True)
    assert attempts == [1, 2, 3]
    [dead] = await queue.list_dead()
    assert dead.task == "flaky" and dict(dead.payload) == {"n": 1}
    assert dead.attempts == 3 and dead.last_error == "RuntimeError: boom on attempt 3"
    assert await queue.depth() == 0


async def test_a_job_that_fails_then_succeeds_is_acked(queue: SqliteJobQueue) -> None:
    seen: list[int] = []

    async def second_time_lucky(job: Job) -> None:
        seen.append(job.attempt)
        if job.attempt == 1:
            raise ConnectionError("transient")

    await queue.enqueue("t", {})
    runner = WorkerRunner(queue, {"t": second_time_lucky}, FAST)
    await runner.run(burst=True)
    assert seen == [1, 2] and runner.processed == 1
    assert await queue.dead_count() == 0 and await queue.depth() == 0


async def test_permanent_errors_and_unknown_tasks_skip_retries(queue: SqliteJobQueue) -> None:
    calls = 0

    async def hopeless(job: Job) -> None:
        nonlocal calls
        calls += 1
        raise PermanentJobError("message is gone")

    await queue.enqueue("hopeless", {})
    await queue.enqueue("nobody-handles-this", {})
    await WorkerRunner(queue, {"hopeless": hopeless}, FAST).run(burst=True)
    assert calls == 1
    errors = sorted(d.last_error for d in await queue.list_dead())
    assert errors == ["PermanentJobError: message is gone",
                      "no module registers task 'nobody-handles-this'"]


async def test_a_job_past_its_timeout_is_retried_as_a_timeout(queue: SqliteJobQueue) -> None:
    async def slow(job: Job) -> None:
        if job.attempt < 3:
            await asyncio.sleep(10)

    await queue.enqueue("slow", {})
    config = RunnerConfig(concurrency=1, job_timeout=0.2, backoff_base=0.0, backoff_max=0.0,
                          receive_wait=0.05)
    runner = WorkerRunner(queue, {"slow": slow}, config)
    await asyncio.wait_for(runner.run(burst=True), 10)
    assert runner.processed == 1 and await queue.dead_count() == 0


async def test_lease_is_kept_alive_while_a_long_job_runs(tmp_path: Path) -> None:
    q = SqliteJobQueue(str(tmp_path / "q.db"), visibility_timeout=0.3, poll_interval=0.05)
    other_saw: list[Job] = []
    try:
        async def long_job(job: Job) -> None:
            # Three leases long: without renewal another consumer would get it.
            for _ in range(9):
                other_saw.extend(await q.receive(1, 0))
                await asyncio.sleep(0.1)

        await q.enqueue("long", {})
        runner = WorkerRunner(q, {"long": long_job}, RunnerConfig(concurrency=1,
                                                                   receive_wait=0.05))
        await asyncio.wait_for(runner.run(burst=True), 10)
        assert other_saw == [] and runner.processed == 1
    finally:
        await q.close()


async def test_stop_lets_running_jobs_finish_and_takes_no_new_one(queue: SqliteJobQueue) -> None:
    started, finished = asyncio.Event(), []

    async def work(job: Job) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(job.payload["n"])

    await queue.enqueue("w", {"n": 1})
    runner = WorkerRunner(queue, {"w": work}, RunnerConfig(concurrency=1, receive_wait=0.05,
                                                            shutdown_grace=5))
    task = asyncio.create_task(runner.run())
    await started.wait()
    await queue.enqueue("w", {"n": 2})
    runner.stop()
    await asyncio.wait_for(task, 5)
    assert finished == [1]
    assert await queue.depth() == 1  # the second job waits for the next worker


async def test_job_cut_off_by_the_grace_period_is_handed_back(queue: SqliteJobQueue) -> None:
    started = asyncio.Event()

    async def stuck(job: Job) -> None:
        started.set()
        await asyncio.sleep(30)

    await queue.enqueue("stuck", {})
    runner = WorkerRunner(queue, {"stuck": stuck}, RunnerConfig(receive_wait=0.05,
                                                                 shutdown_grace=0.2))
    task = asyncio.create_task(runner.run())
    await started.wait()
    runner.stop()
    await asyncio.wait_for(task, 5)
    [again] = await queue.receive(1, 0)
    assert again.task == "stuck"


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    rng = random.Random(7)
    for attempt in range(1, 10):
        ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, 2.0, 60.0, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered, so workers do not retry in lockstep


async def test_stop_at_full_capacity_still_cuts_off_after_the_grace(
    queue: SqliteJobQueue,
) -> None:
    started = asyncio.Event()

    async def stuck(job: Job) -> None:
        started.set()
        await asyncio.sleep(30)

    await queue.enqueue("stuck", {})
    runner = WorkerRunner(queue, {"stuck": stuck}, RunnerConfig(concurrency=1, receive_wait=0.05,
                                                                 shutdown_grace=0.2))
    task = asyncio.create_task(runner.run())
    await started.wait()
    runner.stop()
    await asyncio.wait_for(task, 3)  # not the 30 s of the stuck job
    [again] = await queue.receive(1, 0)
    assert again.attempt == 2


async def test_periodic_tasks_run_at_start_and_every_interval_but_not_in_burst(
    queue: SqliteJobQueue,
) -> None:
    ticks: list[float] = []
    enough = asyncio.Event()

    async def tick() -> None:
        ticks.append(asyncio.get_running_loop().time())
        if len(ticks) == 3:
            enough.set()
        if len(ticks) == 2:
            raise RuntimeError("a failing sweep must not stop the next one")

    sweep = PeriodicTask("sweep", 0.1, tick)
    await WorkerRunner(queue, {}, FAST, [sweep]).run(burst=True)
    assert ticks == []
    runner = WorkerRunner(queue, {}, FAST, [sweep])
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(enough.wait(), 5)
    runner.stop()
    await asyncio.wait_for(task, 5)
    assert ticks[2] - ticks[0] >= 0.19
