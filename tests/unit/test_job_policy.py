"""The one job policy, decided without any queue: what each kind of run leads to."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from application.errors import PermanentJobError
from application.job_policy import MAX_ERROR_CHARS, Done, GiveUp, JobPolicy, RetryAfter
from application.ports.job_queue import Job

POLICY = JobPolicy(job_timeout=0.2, backoff_base=1.0, backoff_max=3.0)


def job(attempt: int = 1, max_attempts: int = 3, task: str = "t") -> Job:
    return Job(id="j1", task=task, payload={}, attempt=attempt, max_attempts=max_attempts,
               enqueued_at=datetime.now(UTC))


async def ok(_: Job) -> None:
    return None


async def fails(_: Job) -> None:
    raise ConnectionError("x" * (MAX_ERROR_CHARS * 2))


async def hangs(_: Job) -> None:
    await asyncio.sleep(30)


async def hopeless(_: Job) -> None:
    raise PermanentJobError("gone")


async def test_a_returning_handler_is_done() -> None:
    assert await POLICY.run(job(), ok) == Done()


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.5, 1.0), (2, 1.0, 2.0), (5, 1.5, 3.0)])
async def test_a_failure_with_attempts_left_is_retried_after_a_capped_jittered_backoff(
    attempt: int, low: float, high: float
) -> None:
    outcome = await POLICY.run(job(attempt=attempt, max_attempts=9), fails)
    assert isinstance(outcome, RetryAfter)
    assert low <= outcome.delay <= high
    assert outcome.error.startswith("ConnectionError: xxx")
    assert len(outcome.error) == MAX_ERROR_CHARS  # bounded, whatever the exception says


async def test_the_last_attempt_and_a_permanent_error_are_dead_lettered() -> None:
    assert isinstance(await POLICY.run(job(attempt=3), fails), GiveUp)
    assert await POLICY.run(job(attempt=1), hopeless) == GiveUp("PermanentJobError: gone")


async def test_a_timeout_is_a_retry_with_a_clear_error() -> None:
    outcome = await POLICY.run(job(), hangs)
    assert isinstance(outcome, RetryAfter) and outcome.error == "TimeoutError: job timed out"


async def test_an_unregistered_task_and_a_run_past_the_last_attempt_are_dead_lettered() -> None:
    assert await POLICY.run(job(task="x.y"), None) == GiveUp("no module registers task 'x.y'")
    outcome = await POLICY.run(job(attempt=4, max_attempts=3), ok)
    assert isinstance(outcome, GiveUp) and "past the last attempt" in outcome.error


async def test_a_cancelled_run_is_not_an_outcome_but_a_cancellation() -> None:
    task = asyncio.create_task(POLICY.run(job(), hangs))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
