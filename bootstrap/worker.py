"""Worker composition: task handlers from the application's registry, and the runner."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from lagom import Container

from adapters.worker.runner import Handler, RunnerConfig, WorkerRunner
from application.ports.job_queue import Job, JobConsumer
from application.tasks import TaskSpec, task_registry
from bootstrap.container import Resources, build_container
from bootstrap.logging import configure_logging
from bootstrap.settings import Settings, load_settings

log = logging.getLogger(__name__)


def _handler(container: Container, spec: TaskSpec[Any]) -> Handler:
    async def handle(job: Job) -> object:
        # A fresh use case (and unit of work) per job; jobs never share state.
        use_case = container[spec.use_case]
        return await use_case.execute(spec.payload_type.from_payload(job.payload))

    return handle


def build_handlers(container: Container) -> dict[str, Handler]:
    return {name: _handler(container, spec) for name, spec in task_registry().items()}


def build_runner(container: Container, settings: Settings) -> WorkerRunner:
    config = RunnerConfig(
        concurrency=settings.worker_concurrency,
        job_timeout=settings.worker_job_timeout_seconds,
        backoff_base=settings.worker_backoff_base_seconds,
        backoff_max=settings.worker_backoff_max_seconds,
        shutdown_grace=settings.worker_shutdown_grace_seconds,
    )
    return WorkerRunner(container[JobConsumer], build_handlers(container), config)


async def run_worker(settings: Settings | None = None) -> None:
    """``wta worker``: run until SIGTERM/SIGINT, then drain within the grace period."""
    settings = settings or load_settings()
    configure_logging(settings)
    container = build_container(settings)
    runner = build_runner(container, settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop)
    log.info("worker started (queue backend %s)", settings.queue_backend)
    try:
        await runner.run()
    finally:
        await container[Resources].aclose()
        log.info("worker stopped after %d job(s)", runner.processed)
