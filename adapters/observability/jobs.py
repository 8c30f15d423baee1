"""Around each job run: log context, a consumer span under the enqueuer's trace, metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from adapters.observability.metrics import Instruments
from adapters.observability.propagation import CONTEXT_KEYS, extract
from application.errors import PermanentJobError
from application.ports.job_queue import Job

log = logging.getLogger(__name__)

JobHandler = Callable[[Job], Awaitable[object]]


def _outcome(job: Job, exc: BaseException | None) -> str:
    if exc is None:
        return "success"
    if isinstance(exc, asyncio.CancelledError | TimeoutError):
        return "cancelled"  # the runner's timeout or shutdown; the job is retried
    if isinstance(exc, PermanentJobError) or job.attempt >= job.max_attempts:
        return "dead_letter"
    return "retry"


def observe_job(handler: JobHandler, tracer: Tracer, instruments: Instruments) -> JobHandler:
    """Wrap one task's handler; works for any worker that calls handlers with a ``Job``."""

    async def run(job: Job) -> object:
        # Start from a clean log context, not the spawner's (a request's id must not stick
        # to the job); restored afterwards for callers that run handlers inline.
        outer = structlog.contextvars.get_contextvars()
        structlog.contextvars.clear_contextvars()
        context = {k: job.headers[k] for k in CONTEXT_KEYS if job.headers.get(k)}
        structlog.contextvars.bind_contextvars(
            job_id=job.id, task=job.task, attempt=job.attempt, **context
        )
        attributes: dict[str, str | int] = {
            "messaging.system": "wta",
            "messaging.operation.type": "process",
            "messaging.destination.name": job.task,
            "messaging.message.id": job.id,
            "wta.job.attempt": job.attempt,
        }
        if "correlation_id" in context:
            attributes["wta.correlation_id"] = context["correlation_id"]
        started = time.monotonic()
        error: BaseException | None = None
        with tracer.start_as_current_span(
            f"process {job.task}", context=extract(job.headers), kind=SpanKind.CONSUMER,
            attributes=attributes, record_exception=False, set_status_on_exception=False,
        ) as span:
            try:
                return await handler(job)
            except BaseException as exc:
                error = exc
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                outcome = _outcome(job, error)
                span.set_attribute("wta.job.outcome", outcome)
                elapsed = time.monotonic() - started
                labels = {"task": job.task, "outcome": outcome}
                instruments.job_runs.add(1, labels)
                instruments.job_duration.record(elapsed, labels)
                waited = (datetime.now(UTC) - job.enqueued_at).total_seconds()
                instruments.job_latency.record(max(waited, 0.0), labels)
                log.info("job %s finished: %s in %.3fs", job.task, outcome, elapsed,
                         extra={"outcome": outcome, "duration_s": round(elapsed, 4)})
                structlog.contextvars.clear_contextvars()
                structlog.contextvars.bind_contextvars(**outer)

    return run
