"""Running every composed module's tasks and periodic tasks under arq's own Worker.

Every job is queued under one arq function (``DISPATCH``) with its task name in the kwargs;
that function rebuilds the port's ``Job`` (attempt = arq's ``job_try``, headers from the
kwargs), looks the task's handler up and lets the job policy (``application.job_policy``)
run it, exactly as the project's runner does. So a job whose task no module registers
reaches our code and is dead-lettered, instead of arq failing it as "function not found".
Then arq's semantics are bent to the policy's decision:

- arq retries only ``Retry``: a "retry after" becomes ``Retry(defer=delay)``; a dead
  letter is recorded through the adapter and ``DeadLettered`` makes arq keep it as failed.
- Our timeout fires before arq's (``ARQ_TIMEOUT_MARGIN``), so a slow job is retried, not
  failed by arq. arq's in-progress key, the lease a crashed worker leaves behind, lives
  for the largest function timeout + 10 s: that is when its job is delivered again.
- A cancelled job (shutdown past the grace period) is re-run by arq and counts an attempt.
  arq's own ``max_tries`` sits above ours so that arq never drops a job silently: a job
  interrupted past the limit reaches the policy, which dead-letters it.

Periodic tasks are arq cron jobs (see ``periodic_cron``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, NoReturn

from arq.cron import CronJob, cron
from arq.worker import Function, Retry, Worker, func

from adapters.arq_queue.job_queue import DISPATCH, ArqJobQueue
from application.job_policy import Done, GiveUp, Handler, JobPolicy, RetryAfter
from application.ports.job_queue import Job

log = logging.getLogger(__name__)

Periodic = Callable[[], Awaitable[object]]

CTX_KEY = "wta_runtime"
ARQ_TIMEOUT_MARGIN = 1.0
# Interrupted runs (a cancel on shutdown) also count in arq's job_try.
_ARQ_EXTRA_TRIES = 5
# Clock-aligned periods a cron schedule can keep exactly (they divide the next unit).
_SIXTY_STEPS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)  # seconds of a minute, minutes of an hour
_HOUR_STEPS = (1, 2, 3, 4, 6, 8, 12)


class DeadLettered(RuntimeError):
    """Raised after dead-lettering a job so arq records it as failed, not retried."""


@dataclass
class ArqTaskRuntime:
    """What the arq functions need at run time; kept in the worker's ``ctx``."""

    handlers: Mapping[str, Handler]
    queue: ArqJobQueue
    policy: JobPolicy
    periodic: Mapping[str, Periodic] = field(default_factory=dict)

    async def run(self, ctx: Mapping[str, Any], task: str, payload: str,
                  headers: Mapping[str, str], dedup_key: str | None) -> None:
        job = Job(
            id=ctx["job_id"],
            task=task,
            payload=json.loads(payload),
            attempt=ctx["job_try"],
            max_attempts=self.queue.max_attempts,
            enqueued_at=ctx["enqueue_time"].astimezone(UTC),
            dedup_key=dedup_key,
            headers=dict(headers),
        )
        match await self.policy.run(job, self.handlers.get(task)):
            case Done():
                return
            case RetryAfter(delay=delay):
                raise Retry(defer=delay)
            case GiveUp(error=error):
                await self._dead(job, error)

    async def _dead(self, job: Job, error: str) -> NoReturn:
        await self.queue.add_dead_letter(job, error)
        raise DeadLettered(error)


def _task_function(name: str, timeout: float, max_tries: int, keep_result: float,
                   fixed_task: str | None = None) -> Function:
    async def run(ctx: dict[str, Any], *, payload: str, headers: Mapping[str, str] | None = None,
                  dedup_key: str | None = None, task: str | None = None) -> None:
        runtime: ArqTaskRuntime = ctx[CTX_KEY]
        await runtime.run(ctx, task or fixed_task or "", payload, headers or {}, dedup_key)

    return func(run, name=name, timeout=timeout, max_tries=max_tries, keep_result=keep_result)


def _clock_step(seconds: float, steps: tuple[int, ...]) -> int:
    """The largest clock-aligned step not above ``seconds`` (at least the smallest)."""
    return max((s for s in steps if s <= seconds), default=steps[0])


def periodic_cron(name: str, every_seconds: float) -> CronJob:
    """A periodic task as an arq cron job, on clock-aligned slots about ``every_seconds`` apart.

    Cron slots must divide the minute, hour or day, so the period is rounded down to the
    nearest one that does (45 s runs every 30 s; 90 min runs every hour). arq makes a cron
    job unique per slot, so however many workers run, each slot runs once; it also runs
    once at each worker's start (``run_at_startup``), so the use case must bear overlap.
    """

    async def run(ctx: dict[str, Any]) -> None:
        runtime: ArqTaskRuntime = ctx[CTX_KEY]
        await runtime.periodic[name]()

    cron_name = f"periodic:{name}"
    if every_seconds < 60:
        step = _clock_step(every_seconds, _SIXTY_STEPS)
        return cron(run, name=cron_name, second=set(range(0, 60, step)), run_at_startup=True)
    if every_seconds < 3600:
        step = _clock_step(every_seconds / 60, _SIXTY_STEPS)
        return cron(run, name=cron_name, minute=set(range(0, 60, step)), second=0,
                    run_at_startup=True)
    step = _clock_step(every_seconds / 3600, _HOUR_STEPS)
    return cron(run, name=cron_name, hour=set(range(0, 24, step)), minute=0, second=0,
                run_at_startup=True)


def worker_options(
    queue: ArqJobQueue,
    *,
    job_timeout: float,
    concurrency: int,
    shutdown_grace: float,
    periodic: Mapping[str, float] | None = None,
    task_names: Iterable[str] = (),
) -> dict[str, Any]:
    """Keyword arguments of ``arq.worker.Worker`` (also the attributes of a WorkerSettings).

    ``periodic``: name to period in seconds, one cron job each. ``task_names``: tasks that
    also get an arq function of their own name, for jobs queued by a producer older than
    the single dispatch function.
    """
    timeout = job_timeout + ARQ_TIMEOUT_MARGIN
    max_tries = queue.max_attempts + _ARQ_EXTRA_TRIES
    keep = queue.keep_result_seconds
    functions = [_task_function(DISPATCH, timeout, max_tries, keep)]
    functions += [_task_function(name, timeout, max_tries, keep, fixed_task=name)
                  for name in task_names if name != DISPATCH]
    return {
        "functions": functions,
        "cron_jobs": [periodic_cron(name, every) for name, every in (periodic or {}).items()],
        "queue_name": queue.queue_name,
        "redis_settings": queue.redis_settings,
        "max_jobs": concurrency,
        "job_timeout": timeout,
        "max_tries": max_tries,
        "keep_result": keep,
        # SIGTERM: take no new job, wait this long for running ones, then cancel them
        # (arq re-queues a cancelled job for the next worker).
        "job_completion_wait": shutdown_grace,
    }


class ArqWorkerRunner:
    """arq's Worker behind the runner interface (``run``/``stop``) the entry points use."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    @property
    def processed(self) -> int:
        return self._worker.jobs_complete

    def stop(self) -> None:
        """Stop taking jobs; running ones get the grace period, then are handed back."""
        self._worker.handle_sig_wait_for_completion(signal.SIGTERM)

    async def run(self) -> None:
        worker = self._worker
        main = asyncio.ensure_future(worker.main())
        worker.main_task = main  # stop() cancels it once the grace period is over
        try:
            await asyncio.shield(main)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                main.cancel()
                raise
            # Only the worker's main loop was cancelled: that is how arq stops.
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                await worker.close()
