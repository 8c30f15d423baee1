"""Which delivery of its job the running use case is: set by the worker around each job.

A use case that must act differently on its last attempt (send a fallback instead of failing
once more) reads ``current_attempt()``; the job's payload stays what the enqueuer wrote.
Outside a worker nothing retries, so the run counts as the last.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    max_attempts: int

    @property
    def is_last(self) -> bool:
        return self.number >= self.max_attempts


_CURRENT: ContextVar[Attempt | None] = ContextVar("wta_job_attempt", default=None)


def current_attempt() -> Attempt | None:
    return _CURRENT.get()


def is_last_attempt() -> bool:
    attempt = _CURRENT.get()
    return attempt is None or attempt.is_last


@contextmanager
def running_attempt(number: int, max_attempts: int) -> Iterator[Attempt]:
    attempt = Attempt(number, max_attempts)
    token = _CURRENT.set(attempt)
    try:
        yield attempt
    finally:
        _CURRENT.reset(token)
