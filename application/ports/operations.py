"""Operational ports: what bootstrap and wrappers call on a backend besides its main port.

Every queue adapter implements all three; a database or client that only needs closing
implements ``Closeable``.
"""

from __future__ import annotations

from typing import Protocol

from application.ports.job_queue import JobQueue


class HealthCheck(Protocol):
    async def ping(self) -> None:
        """Return when the backend answers; raise the port's ``*Unavailable`` otherwise."""
        ...


class Closeable(Protocol):
    async def close(self) -> None:
        """Release connections and files; calling it twice is harmless."""
        ...


class QueueStats(Protocol):
    async def depth(self) -> int:
        """Jobs waiting (delayed and retrying ones included) or running."""
        ...

    async def dead_count(self) -> int:
        """Jobs in the dead-letter store."""
        ...


class OperatedJobQueue(JobQueue, HealthCheck, QueueStats, Closeable, Protocol):
    """A job queue with its operations: what a producer-side wrapper wraps."""
