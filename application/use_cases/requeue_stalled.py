"""The periodic sweep: queue again the work a queue lost, for every task that says how to
find it (``TaskSpec.stalled``).

The database is the source of truth; a queue may lose a job (a Redis flush, a lost SQS
message, a crashed worker). Each task's finder lists stored work older than the threshold
that is still not done. Re-queueing uses the producer's own dedup key, so a job that is
still waiting or running blocks the copy, and the handlers' idempotency makes any copy
that does run harmless. Work whose job was dead-lettered is not lost: it waits in the
dead-letter store for an operator, so the sweep leaves it alone instead of failing it
again every interval. Safe on several workers at once for the same reasons.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from application.ports.clock import Clock
from application.ports.job_queue import DeadLetterStore, JobQueue
from application.tasks import StalledJob, StalledWork

log = logging.getLogger(__name__)

# Dead letters read per sweep to recognise dead-lettered work.
_DEAD_LETTERS_SCANNED = 1000


@dataclass(frozen=True, slots=True)
class SweepPolicy:
    """Work younger than ``older_than`` may still have its job coming; at most ``limit``
    jobs per task and sweep."""

    older_than: timedelta
    limit: int = 100


@dataclass(frozen=True, slots=True)
class StalledWorkFinders:
    """Each task's finder, by task name (the composed modules' ``TaskSpec.stalled``)."""

    by_task: Mapping[str, StalledWork]


class RequeueStalledWork:
    def __init__(
        self,
        finders: StalledWorkFinders,
        policy: SweepPolicy,
        queue: JobQueue,
        dead_letters: DeadLetterStore,
        clock: Clock,
    ) -> None:
        self._finders = finders.by_task
        self._policy = policy
        self._queue = queue
        self._dead_letters = dead_letters
        self._clock = clock

    async def execute(self) -> int:
        """Queue the jobs that were missing; returns how many were queued."""
        cutoff = self._clock.now() - self._policy.older_than
        found = {task: await finder.find(cutoff, self._policy.limit)
                 for task, finder in self._finders.items()}
        if not any(found.values()):
            return 0
        dead = {d.dedup_key for d in await self._dead_letters.list_dead(_DEAD_LETTERS_SCANNED)}
        queued = 0
        for task, jobs in found.items():
            for job in jobs:
                if job.dedup_key not in dead:
                    queued += await self._requeue(task, job)
        if queued:
            log.warning("sweep re-queued %d stalled job%s", queued, "" if queued == 1 else "s")
        return queued

    async def _requeue(self, task: str, job: StalledJob) -> int:
        headers = {"correlation_id": job.correlation_id} if job.correlation_id else None
        job_id = await self._queue.enqueue(job.task or task, job.payload,
                                           dedup_key=job.dedup_key,
                                           headers=headers)
        return 0 if job_id is None else 1
