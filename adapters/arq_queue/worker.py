"""Running the application's task handlers under arq's own Worker.

Each task becomes an arq function that rebuilds the port's ``Job`` (attempt = arq's
``job_try``, headers from the kwargs) and calls the handler. arq's semantics are bent to
the contract here:

- arq retries only ``Retry``: any failure or timeout of ours becomes ``Retry(defer=backoff)``
  until the last attempt, which dead-letters the job instead.
- Our timeout fires before arq's (``ARQ_TIMEOUT_MARGIN``), so a slow job is retried, not
  failed by arq. arq's in-progress key, the lease a crashed worker leaves behind, lives
  for the largest function timeout + 10 s: that is when its job is delivered again.
- A cancelled job (shutdown past the grace period) is re-run by arq and counts an attempt.
  arq's own ``max_tries`` sits above ours so that arq never drops a job silently: a job
  interrupted past the limit reaches our wrapper, which dead-letters it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, NoReturn

from arq.cron import CronJob, cron
from arq.worker import Function, Retry, Worker, func

from adapters.arq_queue.job_queue import ArqJobQueue
from application.attempt import retry_after_hint
from application.errors import PermanentJobError
from application.ports.job_queue import Job

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[object]]
Periodic = Callable[[], Awaitable[object]]

CTX_KEY = "wta_runtime"
ARQ_TIMEOUT_MARGIN = 1.0
# Interrupted runs (a cancel on shutdown) also count in arq's job_try.
_ARQ_EXTRA_TRIES = 5
_MAX_ERROR_CHARS = 2000


class DeadLettered(RuntimeError):
    """Raised after dead-lettering a job so arq records it as failed, not retried."""


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]


@dataclass
class ArqTaskRuntime:
    """What the arq functions need at run time; kept in the worker's ``ctx``."""

    handlers: Mapping[str, Handler]
    queue: ArqJobQueue
    job_timeout: float
    backoff: Callable[[int], float]
    sweep: Periodic | None = None

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
        handler = self.handlers.get(task)
        if handler is None:
            await self._dead(job, f"no handler for task {task!r}")
        if job.attempt > job.max_attempts:
            await self._dead(job, "interrupted past the last attempt (worker shut down)")
        try:
            await asyncio.wait_for(handler(job), self.job_timeout)
        except PermanentJobError as exc:
            log.error("job %s (%s) cannot succeed: %s", job.id, task, exc)
            await self._dead(job, describe(exc))
        except Exception as exc:
            timed_out = isinstance(exc, TimeoutError)
            error = "TimeoutError: job timed out" if timed_out else describe(exc)
            if job.attempt >= job.max_attempts:
                log.error("job %s (%s) failed on its last attempt %d: %s", job.id, task,
                          job.attempt, error)
                await self._dead(job, error)
            delay = max(self.backoff(job.attempt), retry_after_hint(exc))
            log.warning("job %s (%s) attempt %d failed, retrying in %.1fs: %s", job.id, task,
                        job.attempt, delay, error)
            raise Retry(defer=delay) from exc

    async def _dead(self, job: Job, error: str) -> NoReturn:
        await self.queue.add_dead_letter(job, error)
        raise DeadLettered(error)


def _task_function(name: str, timeout: float, max_tries: int, keep_result: float) -> Function:
    async def run(ctx: dict[str, Any], *, payload: str, headers: Mapping[str, str] | None = None,
                  dedup_key: str | None = None) -> None:
        runtime: ArqTaskRuntime = ctx[CTX_KEY]
        await runtime.run(ctx, name, payload, headers or {}, dedup_key)

    return func(run, name=name, timeout=timeout, max_tries=max_tries, keep_result=keep_result)


async def _sweep(ctx: dict[str, Any]) -> None:
    runtime: ArqTaskRuntime = ctx[CTX_KEY]
    if runtime.sweep is not None:
        await runtime.sweep()


def sweep_cron(interval_seconds: float) -> CronJob:
    """The sweep as an arq cron job, on clock-aligned slots about ``interval_seconds`` apart.

    Unique per slot, so however many workers run, each slot sweeps once.
    """
    step = max(1, round(interval_seconds))
    if step < 60:
        return cron(_sweep, name="sweep", second=set(range(0, 60, step)), run_at_startup=True)
    minutes = max(1, min(60, round(step / 60)))
    return cron(_sweep, name="sweep", minute=set(range(0, 60, minutes)), second=0,
                run_at_startup=True)


def worker_options(
    task_names: Iterable[str],
    queue: ArqJobQueue,
    *,
    job_timeout: float,
    concurrency: int,
    shutdown_grace: float,
    sweep_interval: float = 0.0,
) -> dict[str, Any]:
    """Keyword arguments of ``arq.worker.Worker`` (also the attributes of a WorkerSettings)."""
    timeout = job_timeout + ARQ_TIMEOUT_MARGIN
    max_tries = queue.max_attempts + _ARQ_EXTRA_TRIES
    return {
        "functions": [_task_function(name, timeout, max_tries, queue.keep_result_seconds)
                      for name in task_names],
        "cron_jobs": [sweep_cron(sweep_interval)] if sweep_interval > 0 else [],
        "queue_name": queue.queue_name,
        "redis_settings": queue.redis_settings,
        "max_jobs": concurrency,
        "job_timeout": timeout,
        "max_tries": max_tries,
        "keep_result": queue.keep_result_seconds,
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
