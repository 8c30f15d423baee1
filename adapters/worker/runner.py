"""The project's worker loop for queues that have no worker of their own (SQLite, SQS, memory).

It claims jobs from a ``JobConsumer``, runs each with a concurrency limit and a per-task
timeout, keeps the lease alive while a job runs, retries failures with exponential
backoff and jitter, and dead-letters a job after its last attempt. On stop it takes no new
job, lets running ones finish within a grace period and hands the rest back. It also runs
periodic tasks (the sweep) while it runs, never in burst mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from application.attempt import retry_after_hint
from application.errors import PermanentJobError
from application.ports.job_queue import Job, JobConsumer

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class PeriodicTask:
    """Run ``action`` at start and then every ``interval`` seconds; a failure is logged."""

    name: str
    interval: float
    action: Callable[[], Awaitable[object]]

_MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    concurrency: int = 4
    job_timeout: float = 120.0
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    shutdown_grace: float = 20.0
    receive_wait: float = 5.0


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": between half and all of base * 2^(n-1)."""
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:_MAX_ERROR_CHARS]


class WorkerRunner:
    def __init__(
        self,
        consumer: JobConsumer,
        handlers: Mapping[str, Handler],
        config: RunnerConfig | None = None,
        periodic: Sequence[PeriodicTask] = (),
    ) -> None:
        self._consumer = consumer
        self._handlers = dict(handlers)
        self._config = config or RunnerConfig()
        self._periodic = tuple(periodic)
        self._stopping = asyncio.Event()
        self._running: dict[asyncio.Task[None], Job] = {}
        self.processed = 0

    def stop(self) -> None:
        """Ask the loop to stop taking jobs; ``run`` returns after the grace period."""
        self._stopping.set()

    async def run(self, *, burst: bool = False) -> None:
        """Run until ``stop()``; with ``burst``, return once the queue has nothing due."""
        timers = [] if burst else [
            asyncio.create_task(self._every(p), name=f"periodic-{p.name}") for p in self._periodic
        ]
        try:
            while not self._stopping.is_set():
                free = self._config.concurrency - len(self._running)
                if free <= 0:
                    await self._until_a_job_ends_or_stop()
                    continue
                busy = bool(self._running)
                jobs = await self._receive(free, wait=0.0 if burst else self._config.receive_wait)
                if not jobs and burst:
                    # Done only if nothing ran while we looked: a job that finished meanwhile
                    # may have queued a retry or a follow-up job.
                    if not busy and not self._running:
                        return
                    if self._running:
                        await asyncio.wait(
                            list(self._running), return_when=asyncio.FIRST_COMPLETED
                        )
                for job in jobs:
                    task = asyncio.create_task(self._run_one(job), name=f"job-{job.id}")
                    self._running[task] = job
                    task.add_done_callback(self._forget)
        finally:
            for timer in timers:
                timer.cancel()
            await asyncio.gather(*timers, return_exceptions=True)
            await self._drain()

    async def _every(self, task: PeriodicTask) -> None:
        while True:
            try:
                await task.action()
            except Exception:
                log.exception("periodic task %s failed", task.name)
            await asyncio.sleep(task.interval)

    async def _until_a_job_ends_or_stop(self) -> None:
        # Watching stop too: at full capacity a stop must still start the grace period now.
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait([*self._running, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)

    async def _receive(self, max_jobs: int, wait: float) -> list[Job]:
        receive = asyncio.create_task(self._consumer.receive(max_jobs, wait))
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({receive, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if receive in done:
            try:
                return receive.result()
            except Exception:
                log.exception("receiving jobs failed; backing off")
                await asyncio.sleep(min(1.0, self._config.receive_wait))
                return []
        receive.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            jobs = await receive
            # The claim completed as we cancelled it: hand the jobs straight back.
            for job in jobs or []:
                await self._consumer.retry(job, "worker shutting down", 0.0)
        return []

    async def _drain(self) -> None:
        if not self._running:
            return
        log.info("waiting up to %.1fs for %d running job(s)", self._config.shutdown_grace,
                 len(self._running))
        _, pending = await asyncio.wait(list(self._running), timeout=self._config.shutdown_grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run_one(self, job: Job) -> None:
        handler = self._handlers.get(job.task)
        if handler is None:
            await self._consumer.dead_letter(job, f"no handler for task {job.task!r}")
            return
        heartbeat = asyncio.create_task(self._keep_leased(job))
        try:
            await asyncio.wait_for(handler(job), timeout=self._config.job_timeout)
        except asyncio.CancelledError:
            # Shutdown ran out of grace: give the job back untouched for another worker.
            await asyncio.shield(self._consumer.retry(job, "worker shut down mid-job", 0.0))
            raise
        except PermanentJobError as exc:
            log.error("job %s (%s) cannot succeed: %s", job.id, job.task, exc)
            await self._consumer.dead_letter(job, describe(exc))
        except Exception as exc:
            await self._failed(job, exc)
        else:
            await self._consumer.ack(job)
            self.processed += 1
        finally:
            heartbeat.cancel()

    async def _failed(self, job: Job, exc: BaseException) -> None:
        timed_out = isinstance(exc, TimeoutError)
        error = "TimeoutError: job timed out" if timed_out else describe(exc)
        if job.attempt >= job.max_attempts:
            log.error("job %s (%s) failed on its last attempt %d: %s", job.id, job.task,
                      job.attempt, error)
            await self._consumer.dead_letter(job, error)
            return
        delay = max(backoff_delay(job.attempt, self._config.backoff_base,
                                  self._config.backoff_max), retry_after_hint(exc))
        log.warning("job %s (%s) attempt %d failed, retrying in %.1fs: %s", job.id, job.task,
                    job.attempt, delay, error)
        await self._consumer.retry(job, error, delay)

    async def _keep_leased(self, job: Job) -> None:
        # Renew at a third of the lease so one late renewal still leaves margin.
        interval = max(self._consumer.visibility_timeout / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._consumer.extend_lease(job, self._consumer.visibility_timeout)
            except Exception:
                log.exception("could not extend the lease of job %s", job.id)
