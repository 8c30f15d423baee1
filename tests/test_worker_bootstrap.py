"""Worker composition: arq's WorkerSettings from settings, periodic tasks from the modules,
the queue alias log line, and the queue's operations bound as typed ports."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import pytest

from adapters.arq_queue.job_queue import DISPATCH
from adapters.arq_queue.worker import periodic_cron
from adapters.observability.job_queue import TracingJobQueue
from application.ports.job_queue import JobQueue
from application.ports.operations import QueueStats
from application.use_cases.requeue_stalled import StalledWorkFinders
from bootstrap.container import Resources, build_container
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.settings import Settings, SettingsError
from bootstrap.worker import arq_worker_settings, build_periodic
from tests.conftest import MakeSettings
from tests.modules.billing.module import MODULE as BILLING


def test_worker_settings_are_built_from_settings_when_arq_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module("bootstrap.worker")
    monkeypatch.setenv("QUEUE_BACKEND", "redis")
    monkeypatch.setenv("QUEUE_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("WORKER_CONCURRENCY", "3")
    monkeypatch.setenv("WORKER_JOB_TIMEOUT_SECONDS", "30")
    monkeypatch.setenv("WORKER_SHUTDOWN_GRACE_SECONDS", "12")
    cls = module.WorkerSettings  # read from the environment now, not at import
    names = [f.name for f in cls.functions]
    # One dispatch function, plus the composed tasks' own names for jobs queued by an
    # older producer.
    assert names == [DISPATCH, *(spec.name for spec in WHATSAPP.tasks)]
    assert cls.max_jobs == 3 and cls.job_completion_wait == 12
    assert cls.job_timeout > 30  # arq's own timeout sits above ours, so ours fires first
    assert cls.max_tries > 7  # above ours: our wrapper, not arq, dead-letters
    assert [c.name for c in cls.cron_jobs] == ["periodic:sweep", "periodic:close_conversations"]
    assert callable(cls.on_startup) and callable(cls.on_shutdown)


def test_worker_settings_refuse_another_queue_backend() -> None:
    with pytest.raises(SettingsError, match="QUEUE_BACKEND=arq"):
        arq_worker_settings(Settings(_env_file=None))  # type: ignore[call-arg]


@pytest.mark.parametrize("alias", ["bullmq", "Redis"])
def test_queue_aliases_select_arq_with_a_log_line(
    alias: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(_env_file=None, queue_backend=alias)  # type: ignore[call-arg]
    assert settings.queue_backend == "arq"
    with caplog.at_level(logging.INFO):
        build_container(settings)
    assert f"QUEUE_BACKEND={alias.lower()} is an alias: using arq" in caplog.text


# --- periodic tasks from the composed modules ---------------------------------------------


@pytest.mark.parametrize(("interval", "expected"), [(0, []), (7.5, [("sweep", 7.5)])])
def test_the_sweep_is_the_whatsapp_modules_periodic_task_on_its_setting(
    make_settings: MakeSettings, interval: float, expected: list[tuple[str, float]]
) -> None:
    container = build_container(make_settings(
        queue_backend="memory", worker_sweep_interval_seconds=interval,
        assistant_lifecycle_interval_seconds=0))
    assert [(p.name, p.interval) for p in build_periodic(container)] == expected


def test_every_composed_modules_periodic_task_is_scheduled(make_settings: MakeSettings) -> None:
    container = build_container(make_settings(queue_backend="memory"),
                                modules=[WHATSAPP, BILLING])
    assert [(p.name, p.interval) for p in build_periodic(container)] == [
        ("sweep", 60.0), ("close_conversations", 60.0), ("billing.count_open_invoices", 1.0)]


def test_arq_gets_one_cron_job_per_periodic_task(make_settings: MakeSettings) -> None:
    settings = make_settings(queue_backend="arq", worker_sweep_interval_seconds=0)
    cls: Any = arq_worker_settings(settings, modules=[WHATSAPP, BILLING])
    assert [c.name for c in cls.cron_jobs] == [
        "periodic:close_conversations", "periodic:billing.count_open_invoices"]
    assert [f.name for f in cls.functions] == [
        DISPATCH, "generate_reply", "send_message", "download_media", "apply_status",
        "transcribe_audio", "billing.mark_invoice_paid"]


@pytest.mark.parametrize(("every", "field", "slots"), [
    (1, "second", set(range(60))),
    (45, "second", set(range(0, 60, 30))),  # rounded down to a period dividing the minute
    (60, "minute", set(range(60))),
    (300, "minute", set(range(0, 60, 5))),
    (5400, "hour", set(range(24))),
    (6 * 3600, "hour", {0, 6, 12, 18}),
])
def test_a_period_becomes_clock_aligned_cron_slots(every: float, field: str,
                                                    slots: set[int]) -> None:
    job = periodic_cron("p", every)
    assert (job.name, getattr(job, field), job.run_at_startup) == ("periodic:p", slots, True)


# --- queue operations are typed ports -----------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_every_queue_backend_is_bound_with_its_operations(
    make_settings: MakeSettings, backend: str
) -> None:
    container = build_container(make_settings(queue_backend=backend))
    try:
        queue = container[JobQueue]
        assert isinstance(queue, TracingJobQueue)
        await queue.enqueue("t", {"n": 1})
        await queue.ping()
        assert (await queue.depth(), await queue.dead_count()) == (1, 0)
        assert await container[QueueStats].depth() == 1
        await container[Resources].checks["queue"]()
    finally:
        await container[Resources].aclose()


def test_without_a_task_that_finds_its_lost_work_there_is_no_sweep(
    make_settings: MakeSettings,
) -> None:
    container = build_container(make_settings(queue_backend="memory"), modules=[BILLING])
    assert [p.name for p in build_periodic(container)] == ["billing.count_open_invoices"]


async def test_the_sweep_resolves_every_declared_finder_afresh(
    make_settings: MakeSettings,
) -> None:
    container = build_container(make_settings(queue_backend="memory", database_backend="memory",
                                              assistant_lifecycle_interval_seconds=0))
    try:
        first, second = container[StalledWorkFinders], container[StalledWorkFinders]
        assert set(first.by_task) == {"generate_reply", "send_message"}
        assert first.by_task["generate_reply"] is not second.by_task["generate_reply"]
        [sweep] = build_periodic(container)
        assert await sweep.action() == 0  # nothing stored, nothing lost
    finally:
        await container[Resources].aclose()
