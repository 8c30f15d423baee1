"""Worker composition: handlers and periodic tasks from the composed modules, then either
the project's runner (queues that are a ``JobConsumer``) or arq's own Worker (arq).

Both run what ``container[Composition]`` declares, under the one job policy
(``application.job_policy``). ``wta worker`` runs either through ``build_runner``.
``arq bootstrap.worker.WorkerSettings`` also works: ``WorkerSettings`` is built from
settings when arq looks it up (a module ``__getattr__``), so importing this module reads
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from lagom import Container

from adapters.observability.jobs import observe_job
from adapters.observability.use_case import TracedUseCase
from adapters.worker.runner import Handler, PeriodicTask, RunnerConfig, WorkerRunner
from application.attempt import running_attempt
from application.ports.job_queue import Job, JobConsumer
from application.tasks import PeriodicSpec, TaskSpec
from bootstrap.container import Resources, build_container
from bootstrap.heap import settle_for_serving
from bootstrap.logging import configure_logging
from bootstrap.module import Composition, Module
from bootstrap.schema import log_schema_at_start
from bootstrap.settings import Settings, SettingsError, load_settings
from bootstrap.sweep import SWEEP
from bootstrap.telemetry import Telemetry

if TYPE_CHECKING:
    from adapters.arq_queue.worker import ArqTaskRuntime

log = logging.getLogger(__name__)


class Runner(Protocol):
    """What the entry points drive: the project's WorkerRunner or arq's Worker."""

    @property
    def processed(self) -> int: ...

    def stop(self) -> None: ...

    async def run(self) -> None: ...


def _handler(container: Container, spec: TaskSpec[Any]) -> Handler:
    telemetry = container[Telemetry]

    async def handle(job: Job) -> object:
        # A fresh use case (and unit of work) per job; jobs never share state.
        use_case = TracedUseCase(container[spec.use_case], telemetry.tracer)
        with running_attempt(job.attempt, job.max_attempts):  # what the use case may ask
            return await use_case.execute(spec.payload_type.from_payload(job.payload))

    # Log context, a span under the enqueuer's trace, and job metrics, for every worker.
    return observe_job(handle, telemetry.tracer, telemetry.instruments)


def build_handlers(container: Container) -> dict[str, Handler]:
    """One handler per task of every composed module."""
    tasks = container[Composition].tasks
    return {name: _handler(container, spec) for name, spec in tasks.items()}


def build_periodic(container: Container) -> list[PeriodicTask]:
    """The kernel's sweep and every composed module's periodic tasks, those that are on
    (a period above zero)."""
    scheduled = []
    for spec in (SWEEP, *container[Composition].periodic):
        every = spec.period(container.resolve)
        if every > 0:
            scheduled.append(PeriodicTask(spec.name, every, _periodic_action(container, spec)))
    return scheduled


def _periodic_action(container: Container, spec: PeriodicSpec) -> Callable[[], Awaitable[object]]:
    async def run() -> object:
        # A fresh use case per run, like a job's.
        return await container[spec.use_case].execute()

    return run


def runner_config(settings: Settings) -> RunnerConfig:
    return RunnerConfig(
        concurrency=settings.worker_concurrency,
        job_timeout=settings.worker_job_timeout_seconds,
        backoff_base=settings.worker_backoff_base_seconds,
        backoff_max=settings.worker_backoff_max_seconds,
        shutdown_grace=settings.worker_shutdown_grace_seconds,
    )


def build_runner(container: Container, settings: Settings) -> Runner:
    if settings.queue_backend == "arq":
        from arq.worker import get_kwargs

        from adapters.arq_queue import ArqJobQueue
        from adapters.arq_queue.prompt_worker import PromptWorker
        from adapters.arq_queue.worker import ArqWorkerRunner

        # Signals are the entry point's: it calls stop(), as for the project's runner.
        worker = PromptWorker(
            **get_kwargs(arq_worker_settings(settings, container)),
            handle_signals=False,
            wake_channel=container[ArqJobQueue].wake_channel,
            idle_poll=settings.queue_poll_interval_seconds,
        )
        return ArqWorkerRunner(worker)
    return WorkerRunner(container[JobConsumer], build_handlers(container),
                        runner_config(settings), build_periodic(container))


# --- arq --------------------------------------------------------------------------------

_CONTAINER = "wta_container"


def arq_runtime(container: Container, settings: Settings) -> ArqTaskRuntime:
    """What the arq functions call: the same handlers and policy as the project's runner."""
    from adapters.arq_queue import ArqJobQueue
    from adapters.arq_queue.worker import ArqTaskRuntime

    return ArqTaskRuntime(
        handlers=build_handlers(container),
        queue=container[ArqJobQueue],
        policy=runner_config(settings).policy,
        periodic={p.name: p.action for p in build_periodic(container)},
    )


def arq_worker_settings(
    settings: Settings, container: Container | None = None,
    modules: Sequence[Module] | None = None,
) -> type:
    """An arq WorkerSettings class generated from the composed modules and settings.

    Without ``container`` (the ``arq`` CLI), one is built here with ``modules`` (default:
    the kernel's own; building opens nothing) and ``on_shutdown`` closes its resources;
    with one, its owner closes it. The cron schedule comes from that container now: arq
    wants its cron jobs before it starts.
    """
    from adapters.arq_queue import ArqJobQueue
    from adapters.arq_queue.worker import CTX_KEY, worker_options

    if settings.queue_backend != "arq":
        raise SettingsError(f"arq's worker needs QUEUE_BACKEND=arq, not {settings.queue_backend}")
    if container is None:
        configure_logging(settings)  # building logs (a queue alias); arq's CLI logs after
    owned = container or build_container(settings, modules=modules)
    options = worker_options(
        owned[ArqJobQueue],
        job_timeout=settings.worker_job_timeout_seconds,
        concurrency=settings.worker_concurrency,
        shutdown_grace=settings.worker_shutdown_grace_seconds,
        periodic={p.name: p.interval for p in build_periodic(owned)},
        task_names=owned[Composition].tasks,
    )

    async def on_startup(ctx: dict[str, Any]) -> None:
        if container is None:  # the arq CLI's own process, as `wta worker` is ours
            configure_logging(settings)  # again: arq's CLI configured its own meanwhile
            settle_for_serving()
        ctx[_CONTAINER] = owned
        ctx[CTX_KEY] = arq_runtime(owned, settings)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if container is None and _CONTAINER in ctx:
            await ctx[_CONTAINER][Resources].aclose()

    return type("WorkerSettings", (), {**options, "on_startup": on_startup,
                                       "on_shutdown": on_shutdown})


def __getattr__(name: str) -> Any:
    # `arq bootstrap.worker.WorkerSettings`: settings are read when arq asks, not at import.
    if name == "WorkerSettings":
        return arq_worker_settings(load_settings())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- entry point ------------------------------------------------------------------------


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
    await log_schema_at_start(settings)
    settle_for_serving()
    try:
        await runner.run()
    finally:
        await container[Resources].aclose()
        log.info("worker stopped after %d job(s)", runner.processed)
