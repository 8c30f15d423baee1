"""Binds the job queue ports, and its operations, to the queue backend the settings choose."""

from __future__ import annotations

import logging
from typing import Protocol

from lagom import Container

from adapters.observability.job_queue import TracingJobQueue
from application.ports.job_queue import DeadLetterStore, JobConsumer, JobQueue
from application.ports.operations import Closeable, HealthCheck, QueueStats
from bootstrap.resources import Resources
from bootstrap.settings import Settings
from bootstrap.telemetry import Telemetry

log = logging.getLogger(__name__)


class QueueBackend(JobQueue, DeadLetterStore, HealthCheck, QueueStats, Closeable, Protocol):
    """What every queue adapter is: the producer and dead-letter ports and the operations."""


class ConsumableQueueBackend(QueueBackend, JobConsumer, Protocol):
    """A queue the project's runner consumes (every backend but arq)."""


def bind_queue(container: Container, settings: Settings, resources: Resources) -> None:
    queue: QueueBackend
    consumer: JobConsumer | None = None
    if settings.queue_backend == "arq":
        from adapters.arq_queue import ArqJobQueue

        if settings.queue_backend_alias:
            log.info("QUEUE_BACKEND=%s is an alias: using arq", settings.queue_backend_alias)
        arq = ArqJobQueue(settings.queue_redis_url, max_attempts=settings.queue_max_attempts)
        container[ArqJobQueue] = arq  # the arq worker dead-letters through the adapter
        queue = arq  # arq's own Worker consumes; it is no JobConsumer
    else:
        queue = consumer = _consumable(settings)
    # One instance serves every role, so an in-process enqueue wakes the embedded worker.
    # Only the producer side is traced; consumer and DLQ roles keep the bare instance.
    container[JobQueue] = TracingJobQueue(queue, container[Telemetry].tracer)
    if consumer is not None:
        container[JobConsumer] = consumer
    container[DeadLetterStore] = queue
    container[QueueStats] = queue
    resources.checks["queue"] = queue.ping
    resources.closers.append(queue.close)


def _consumable(settings: Settings) -> ConsumableQueueBackend:
    backend = settings.queue_backend
    if backend == "memory":
        from adapters.in_memory.job_queue import InMemoryJobQueue

        return InMemoryJobQueue(
            max_attempts=settings.queue_max_attempts,
            visibility_timeout=settings.queue_visibility_timeout_seconds,
        )
    if backend == "sqlite":
        from adapters.sqlite_queue.job_queue import SqliteJobQueue

        return SqliteJobQueue(
            settings.queue_sqlite_db_path,
            max_attempts=settings.queue_max_attempts,
            visibility_timeout=settings.queue_sqlite_lease_seconds,
            poll_interval=settings.queue_poll_interval_seconds,
        )
    if backend == "sqs":
        from adapters.sqs import SqsJobQueue

        if not settings.queue_sqs_queue_url:
            raise ValueError("QUEUE_BACKEND=sqs needs QUEUE_SQS_QUEUE_URL")
        secret = settings.queue_aws_secret_access_key
        return SqsJobQueue(
            settings.queue_sqs_queue_url,
            dead_letter_queue_url=settings.queue_sqs_dlq_url,
            region=settings.queue_aws_region,
            endpoint_url=settings.queue_sqs_endpoint_url,
            access_key_id=settings.queue_aws_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            max_attempts=settings.queue_max_attempts,
            visibility_timeout=settings.queue_visibility_timeout_seconds,
        )
    raise NotImplementedError(f"QUEUE_BACKEND={backend} is not available yet")
