"""InMemoryJobQueue: the job queue ports in plain asyncio, for tests and single-process runs.

Same semantics as the durable queues: leases that expire, dedup keys held while a job is
waiting, running or recently done, delays, a dead-letter store, and waiters woken by new
work. Payloads are stored as JSON text so a consumer never shares objects with a producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from application.errors import QueueUnavailable
from application.ports.job_queue import DeadLetter, Job, encode_payload
from domain.ids import new_ulid


def _encode(task: str, payload: Mapping[str, Any], limit: int) -> str:
    return encode_payload(task, payload, None, limit)[0]


@dataclass(slots=True)
class _Entry:
    id: str
    task: str
    payload: str  # JSON text
    headers: dict[str, str]
    dedup_key: str | None
    enqueued_at: float  # wall clock, for Job.enqueued_at
    available_at: float  # monotonic, like every deadline below
    state: str = "queued"  # 'queued' | 'running' | 'done'
    attempt: int = 0
    leased_until: float = 0.0
    finished_at: float = 0.0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class _Dead:
    entry: _Entry
    last_error: str
    failed_at: float


class InMemoryJobQueue:
    """JobQueue, JobConsumer and DeadLetterStore held in this process's memory."""

    def __init__(
        self,
        *,
        max_attempts: int = 5,
        visibility_timeout: float = 60.0,
        done_retention_seconds: float = 3600.0,
        max_payload_bytes: int = 256 * 1024,
    ) -> None:
        self.max_attempts = max_attempts
        self.visibility_timeout = visibility_timeout
        self.done_retention_seconds = done_retention_seconds
        self.max_payload_bytes = max_payload_bytes
        self._jobs: dict[str, _Entry] = {}
        self._by_key: dict[str, _Entry] = {}
        self._dead: dict[str, _Dead] = {}
        self._closed = False
        # Replaced on every notify, so a waiter holding the old one is always woken.
        self._changed = asyncio.Event()

    def _check_open(self) -> None:
        if self._closed:
            raise QueueUnavailable("in-memory queue is closed")

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _key_taken(self, key: str) -> bool:
        holder = self._by_key.get(key)
        if holder is None:
            return False
        if self._expired(holder, time.monotonic()):
            self._drop(holder)  # past retention: the key is free again
            return False
        return True

    def _expired(self, entry: _Entry, now: float) -> bool:
        return entry.state == "done" and now - entry.finished_at >= self.done_retention_seconds

    def _drop(self, entry: _Entry) -> None:
        self._jobs.pop(entry.id, None)
        if entry.dedup_key is not None and self._by_key.get(entry.dedup_key) is entry:
            del self._by_key[entry.dedup_key]

    def _insert(self, entry: _Entry) -> bool:
        if entry.dedup_key is not None:
            if self._key_taken(entry.dedup_key):
                return False
            self._by_key[entry.dedup_key] = entry
        self._jobs[entry.id] = entry
        self._notify()
        return True

    async def enqueue(
        self,
        task: str,
        payload: Mapping[str, Any],
        *,
        dedup_key: str | None = None,
        delay_seconds: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> str | None:
        self._check_open()
        text = _encode(task, payload, self.max_payload_bytes)
        header_map = dict(headers or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in header_map.items()):
            raise TypeError(f"headers of task {task!r} must map str to str")
        entry = _Entry(
            id=new_ulid(),
            task=task,
            payload=text,
            headers=header_map,
            dedup_key=dedup_key,
            enqueued_at=time.time(),
            available_at=time.monotonic() + max(0.0, delay_seconds),
        )
        return entry.id if self._insert(entry) else None

    def _claim(self, max_jobs: int) -> tuple[list[Job], float | None]:
        now = time.monotonic()
        due: list[_Entry] = []
        next_due: float | None = None
        expired: list[_Entry] = []
        for entry in self._jobs.values():
            if entry.state == "done":
                if self._expired(entry, now):
                    expired.append(entry)
                continue
            at = entry.available_at if entry.state == "queued" else entry.leased_until
            if at <= now:
                due.append(entry)
            elif next_due is None or at < next_due:
                next_due = at
        for entry in expired:  # housekeeping: done jobs are kept only to hold their key
            self._drop(entry)
        if not due:
            return [], next_due
        due.sort(key=lambda e: (e.available_at, e.id))
        jobs = []
        for entry in due[:max_jobs]:
            entry.state = "running"
            entry.attempt += 1
            entry.leased_until = now + self.visibility_timeout
            jobs.append(
                Job(
                    id=entry.id,
                    task=entry.task,
                    payload=json.loads(entry.payload),
                    attempt=entry.attempt,
                    max_attempts=self.max_attempts,
                    enqueued_at=datetime.fromtimestamp(entry.enqueued_at, UTC),
                    dedup_key=entry.dedup_key,
                    headers=dict(entry.headers),
                )
            )
        return jobs, None

    async def receive(self, max_jobs: int, wait_seconds: float) -> list[Job]:
        if max_jobs <= 0:
            return []
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            self._check_open()
            jobs, next_due = self._claim(max_jobs)
            if jobs:
                return jobs
            now = time.monotonic()
            if now >= deadline:
                return []
            until = deadline if next_due is None else min(deadline, next_due)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), until - now)

    def _held(self, job: Job) -> _Entry | None:
        """The entry if ``job`` still holds its lease (nobody received it again since)."""
        entry = self._jobs.get(job.id)
        if entry is None or entry.state != "running" or entry.attempt != job.attempt:
            return None
        return entry

    async def ack(self, job: Job) -> None:
        self._check_open()
        if (entry := self._held(job)) is not None:
            entry.state = "done"
            entry.finished_at = time.monotonic()
            if entry.dedup_key is None:
                del self._jobs[entry.id]  # nothing to remember it for

    async def retry(self, job: Job, error: str, delay_seconds: float) -> None:
        self._check_open()
        if (entry := self._held(job)) is not None:
            entry.state = "queued"
            entry.available_at = time.monotonic() + max(0.0, delay_seconds)
            entry.last_error = error
            self._notify()

    async def dead_letter(self, job: Job, error: str) -> None:
        self._check_open()
        if (entry := self._held(job)) is not None:
            self._drop(entry)
            self._dead[entry.id] = _Dead(entry, error, time.time())

    async def extend_lease(self, job: Job, seconds: float) -> None:
        self._check_open()
        if (entry := self._held(job)) is not None:
            entry.leased_until = time.monotonic() + seconds

    async def list_dead(self, limit: int = 100) -> list[DeadLetter]:
        self._check_open()
        dead = sorted(self._dead.values(), key=lambda d: (d.failed_at, d.entry.id))[:limit]
        return [
            DeadLetter(
                id=d.entry.id,
                task=d.entry.task,
                payload=json.loads(d.entry.payload),
                attempts=d.entry.attempt,
                last_error=d.last_error,
                failed_at=datetime.fromtimestamp(d.failed_at, UTC),
                dedup_key=d.entry.dedup_key,
            )
            for d in dead
        ]

    async def replay(self, dead_letter_id: str) -> bool:
        """Queue the dead job again as a fresh job; its dedup key applies as for enqueue."""
        self._check_open()
        dead = self._dead.pop(dead_letter_id, None)
        if dead is None:
            return False
        old = dead.entry
        fresh = _Entry(
            id=new_ulid(),
            task=old.task,
            payload=old.payload,
            headers=dict(old.headers),
            dedup_key=old.dedup_key,
            enqueued_at=time.time(),
            available_at=time.monotonic(),
        )
        self._insert(fresh)  # a live job with the same key already covers the work
        return True

    async def purge(self) -> int:
        self._check_open()
        count = len(self._dead)
        self._dead.clear()
        return count

    async def ping(self) -> None:
        self._check_open()

    async def depth(self) -> int:
        """Jobs waiting (delayed ones included) or running."""
        self._check_open()
        return sum(1 for e in self._jobs.values() if e.state != "done")

    async def dead_count(self) -> int:
        self._check_open()
        return len(self._dead)

    async def close(self) -> None:
        self._closed = True
        self._notify()  # waiting receivers wake and find the queue closed
