"""Worker composition: arq's WorkerSettings from settings, and the queue alias log line."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import pytest

from adapters.arq_queue.job_queue import DISPATCH
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.container import build_container
from bootstrap.settings import Settings, SettingsError
from bootstrap.worker import arq_worker_settings


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
    assert [c.name for c in cls.cron_jobs] == ["periodic:sweep"]
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
