"""The one job policy every worker applies, whatever consumes the queue.

Runs a job's handler under a timeout and decides what happens next: done, retry after an
exponential backoff with jitter, or dead letter (after the last attempt, at once for a
``PermanentJobError``, and for a task no module registers). The worker of each backend only
carries the decision out (the runner acks, retries or dead-letters through the consumer;
the arq integration raises arq's ``Retry`` or records the dead letter).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from application.errors import PermanentJobError, retry_delay_hint
from application.ports.job_queue import Job

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[object]]

MAX_ERROR_CHARS = 2000
TIMED_OUT = "TimeoutError: job timed out"


@dataclass(frozen=True, slots=True)
class Done:
    """The handler returned: acknowledge the job."""


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """The attempt failed and attempts remain: deliver the job again after ``delay``."""

    error: str
    delay: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The job cannot succeed (or has no attempt left): move it to the dead letters."""

    error: str


Outcome = Done | RetryAfter | GiveUp


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": between half and all of base * 2^(n-1)."""
    ceiling = min(cap, base * 2.0 ** max(attempt - 1, 0))
    jitter: float = (rng or random).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter


def describe(exc: BaseException) -> str:
    """The error text stored with a job: type and message, bounded."""
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


def unregistered(task: str) -> str:
    return f"no module registers task {task!r}"


@dataclass(frozen=True, slots=True)
class JobPolicy:
    job_timeout: float = 120.0
    backoff_base: float = 1.0
    backoff_max: float = 300.0

    def backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self.backoff_base, self.backoff_max)

    async def run(self, job: Job, handler: Handler | None) -> Outcome:
        """Run ``handler`` on ``job`` and say what to do with the job.

        A cancellation (worker shutdown) is not a failure: it propagates, and the worker
        hands the job back untouched.
        """
        if handler is None:
            error = unregistered(job.task)
            log.error("job %s: %s", job.id, error)
            return GiveUp(error)
        if job.attempt > job.max_attempts:
            # Only a backend that counts interrupted runs as attempts (arq) gets here.
            return GiveUp("interrupted past the last attempt (worker shut down)")
        try:
            # In this task (asyncio.timeout), not a new one as wait_for makes on 3.11.
            async with asyncio.timeout(self.job_timeout):
                await handler(job)
        except PermanentJobError as exc:
            log.error("job %s (%s) cannot succeed: %s", job.id, job.task, exc)
            return GiveUp(describe(exc))
        except Exception as exc:
            error = TIMED_OUT if isinstance(exc, TimeoutError) else describe(exc)
            return self._failed(job, error, retry_delay_hint(exc) or 0.0)
        return Done()

    def _failed(self, job: Job, error: str, floor: float = 0.0) -> Outcome:
        if job.attempt >= job.max_attempts:
            log.error("job %s (%s) failed on its last attempt %d: %s", job.id, job.task,
                      job.attempt, error)
            return GiveUp(error)
        # A provider's Retry-After is a floor: retrying sooner only earns another refusal.
        delay = max(self.backoff(job.attempt), floor)
        log.warning("job %s (%s) attempt %d failed, retrying in %.1fs: %s", job.id, job.task,
                    job.attempt, delay, error)
        return RetryAfter(error, delay)
