"""The kernel's own periodic task: the sweep, over every composed task that says how to
find its lost work (``TaskSpec.stalled``). It runs like any module's periodic task (the
runner's schedule, arq's cron), every ``WORKER_SWEEP_INTERVAL_SECONDS`` (0: off)."""

from __future__ import annotations

from datetime import timedelta

from lagom import Container
from lagom.interfaces import ReadableContainer

from application.tasks import PeriodicSpec, Resolver
from application.use_cases.requeue_stalled import (
    RequeueStalledWork,
    StalledWorkFinders,
    SweepPolicy,
)
from bootstrap.module import Composition
from bootstrap.settings import Settings


def _interval(resolve: Resolver) -> float:
    tasks = resolve(Composition).tasks.values()
    if not any(spec.stalled for spec in tasks):
        return 0.0  # no task says how to find its lost work: nothing to sweep
    return resolve(Settings).worker_sweep_interval_seconds


SWEEP = PeriodicSpec("sweep", _interval, RequeueStalledWork)


def bind_sweep(container: Container, settings: Settings) -> None:
    container[SweepPolicy] = SweepPolicy(
        older_than=timedelta(seconds=settings.worker_sweep_after_seconds))

    def finders(c: ReadableContainer) -> StalledWorkFinders:
        # Fresh finders (and units of work) for each sweep.
        tasks = c[Composition].tasks.values()
        return StalledWorkFinders({s.name: c[s.stalled] for s in tasks if s.stalled})

    container[StalledWorkFinders] = finders
