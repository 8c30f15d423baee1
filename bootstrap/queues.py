"""Binds the job queue ports to the queue backend the settings choose."""

from __future__ import annotations

import logging
from typing import Any

from lagom import Container

from adapters.observability.job_queue import TracingJobQueue
from application.ports.job_queue import DeadLetterStore, JobConsumer, JobQueue
from bootstrap.resources import Resources
from bootstrap.settings import Settings
from bootstrap.telemetry import Telemetry

log = logging.getLogger(__name__)


def bind_queue(container: Container, settings: Settings, resources: Resources) -> None:
    backend = settings.queue_backend
    queue: Any
    if backend == "memory":
        from adapters.in_memory.job_queue import InMemoryJobQueue

        queue = InMemoryJobQueue(
            max_attempts=settings.queue_max_attempts,
            visibility_timeout=settings.queue_visibility_timeout_seconds,
        )
    elif backend == "sqlite":
        from adapters.sqlite_queue.job_queue import SqliteJobQueue

        queue = SqliteJobQueue(
            settings.queue_sqlite_db_path,
            max_attempts=settings.queue_max_attempts,
            visibility_timeout=settings.queue_sqlite_lease_seconds,
            poll_interval=settings.queue_poll_interval_seconds,
        )
    elif backend == "arq":
        from adapters.arq_queue import ArqJobQueue

        if settings.queue_backend_alias:
            log.info("QUEUE_BACKEND=%s is an alias: using arq", settings.queue_backend_alias)
        queue = ArqJobQueue(settings.queue_redis_url, max_attempts=settings.queue_max_attempts)
        container[ArqJobQueue] = queue  # the arq worker dead-letters through the adapter
    elif backend == "sqs":
        from adapters.sqs import SqsJobQueue

        if not settings.queue_sqs_queue_url:
            raise ValueError("QUEUE_BACKEND=sqs needs QUEUE_SQS_QUEUE_URL")
        secret = settings.queue_aws_secret_access_key
        queue = SqsJobQueue(
            settings.queue_sqs_queue_url,
            dead_letter_queue_url=settings.queue_sqs_dlq_url,
            region=settings.queue_aws_region,
            endpoint_url=settings.queue_sqs_endpoint_url,
            access_key_id=settings.queue_aws_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            max_attempts=settings.queue_max_attempts,
            visibility_timeout=settings.queue_visibility_timeout_seconds,
        )
    else:
        raise NotImplementedError(f"QUEUE_BACKEND={backend} is not available yet")
    # One instance serves every role, so an in-process enqueue wakes the embedded worker.
    # Only the producer side is traced; consumer and DLQ roles keep the bare instance.
    container[JobQueue] = TracingJobQueue(queue, container[Telemetry].tracer)
    if backend != "arq":  # arq's own Worker consumes; it is no JobConsumer
        container[JobConsumer] = queue
    container[DeadLetterStore] = queue
    resources.checks["queue"] = queue.ping
    resources.closers.append(queue.close)
