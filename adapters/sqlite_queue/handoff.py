"""Jobs enqueued while a receiver of the same queue instance waits, handed to it directly.

The embedded worker waits in ``receive`` almost all the time (hundreds of free slots), so
each reply job used to be inserted, woken for, and then claimed in a second write
transaction. When a receiver is waiting, the enqueue inserts the job already leased
(running, attempt 1, the usual lease) and hands the ``Job`` over in memory: one write
transaction instead of two. Delivery stays at least once: a handed job is leased like a
claimed one, so if this process dies before acking it, it comes back when its lease
expires; one handed to a receiver that stopped waiting is released to the queue.
"""

from __future__ import annotations

from application.ports.job_queue import Job


class Handoff:
    """How many jobs waiting receivers can take, and the jobs handed to them."""

    def __init__(self) -> None:
        self._room = 0  # free slots of the receivers now waiting
        self._handed: list[Job] = []

    def wants(self) -> bool:
        """An enqueue now may insert its job leased and hand it over."""
        return self._room > len(self._handed)

    def give(self, job: Job) -> None:
        self._handed.append(job)

    def take(self, max_jobs: int) -> list[Job]:
        taken, self._handed = self._handed[:max_jobs], self._handed[max_jobs:]
        return taken

    def open(self, slots: int) -> None:
        """A receiver starts waiting with ``slots`` free."""
        self._room += slots

    def close(self, slots: int) -> None:
        self._room -= slots

    def drain(self) -> list[Job]:
        """Every handed job not taken yet (the queue is closing)."""
        drained, self._handed = self._handed, []
        return drained

    def orphans(self) -> list[Job]:
        """Handed jobs no waiting receiver will take (all of them when none waits)."""
        return [] if self._room > 0 else self.drain()
