"""SqliteJobQueue: a durable job queue in one SQLite file, shared safely by many processes.

Work that may block (waiting for another process's lock) runs on a single thread owned by
the queue instance, with its own connection (sqlite3 connections are bound to their
thread). The uncontended case skips that thread hop, which costs more than the write
itself: a second, non-blocking connection on the event loop thread tries first, and any
SQLITE_BUSY from it (rolled back, nothing written) sends the call to the queue thread.
A claim is one UPDATE ... RETURNING inside BEGIN IMMEDIATE, so two consumers, in this
process or another, can never lease the same job. ``attempt`` (deliveries so far) doubles
as the lease token: ack/retry/dead_letter/extend_lease only touch the job while it is
still running under the attempt the caller received.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from adapters.sqlite_queue import statements as sql
from adapters.sqlite_queue.codec import dead_letter_from_row, encode_job, job_from_row
from adapters.sqlite_queue.connection import (
    is_busy,
    open_connection,
    open_nonblocking,
    write,
)
from adapters.sqlite_queue.handoff import Handoff
from adapters.sqlite_queue.wakeup import Wakeup
from application.errors import QueueUnavailable
from application.ports.job_queue import DeadLetter, Job
from domain.ids import new_ulid

T = TypeVar("T")
logger = logging.getLogger(__name__)

# Wake a little after a delayed job is due so the claim does not run a hair too early.
_DUE_SLACK = 0.005

_Claim = tuple[list[Job], float | None]


class SqliteJobQueue:
    """JobQueue, JobConsumer and DeadLetterStore on one SQLite file (WAL mode)."""

    def __init__(
        self,
        path: str,
        *,
        max_attempts: int = 5,
        visibility_timeout: float = 60.0,
        poll_interval: float = 1.0,
        done_retention_seconds: float = 3600.0,
        max_payload_bytes: int = 256 * 1024,
        purge_batch: int = 500,
        housekeeping_interval: float = 60.0,
    ) -> None:
        self.path = path
        self.max_attempts = max_attempts
        self.visibility_timeout = visibility_timeout
        self.poll_interval = poll_interval
        self.done_retention_seconds = done_retention_seconds
        self.max_payload_bytes = max_payload_bytes
        # Finished jobs past their retention deleted per claim, at most (see PURGE_DONE).
        self.purge_batch = purge_batch
        self.housekeeping_interval = housekeeping_interval
        # Nothing is opened here: the thread and connection start on first use.
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        # The loop thread's non-blocking connection, and the thread it belongs to.
        self._fast: sqlite3.Connection | None = None
        self._fast_thread: int | None = None
        self._closed = False
        self._last_housekeeping = -math.inf
        # Replaced on every notify, so a waiter that captured it before claiming cannot
        # miss a wake-up that happens while its claim is in flight.
        self._changed = asyncio.Event()
        # Other processes' consumers hear of our changes through this, and ours of theirs.
        self._wakeup = Wakeup(path)
        self._handoff = Handoff()
        self._releases: set[asyncio.Task[None]] = set()

    # -- plumbing (the _sync methods and _connection run on the queue thread) ---------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise sqlite3.ProgrammingError("the queue is closed")
        if self._conn is None:  # a failed open is simply retried on the next call
            self._conn = open_connection(self.path)
        return self._conn

    def _submit(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        if self._closed:
            raise QueueUnavailable(f"SQLite queue at {self.path!r} is closed")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-queue")
        return asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _unavailable(self, exc: BaseException) -> QueueUnavailable:
        return QueueUnavailable(f"SQLite queue at {self.path!r} failed: {exc}")

    def _fast_connection(self) -> sqlite3.Connection | None:
        """The loop thread's non-blocking connection, once the queue thread made the file."""
        if self._conn is None or self._closed:
            return None  # the first call goes through the queue thread and creates the schema
        if self._fast is None:
            self._fast = open_nonblocking(self.path)
            self._fast_thread = threading.get_ident()
        return self._fast if self._fast_thread == threading.get_ident() else None

    def _try_fast(self, fn: Callable[[sqlite3.Connection], T]) -> tuple[bool, T | None]:
        """Run ``fn`` on the loop thread unless a lock is held elsewhere: (done, result)."""
        try:
            conn = self._fast_connection()
            if conn is None:
                return False, None
            return True, fn(conn)
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                return False, None  # rolled back by write(): safe to run again elsewhere
            raise self._unavailable(exc) from exc
        except (sqlite3.Error, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise QueueUnavailable(f"SQLite queue at {self.path!r} is closed")
        done, result = self._try_fast(fn)
        if done:
            return result  # type: ignore[return-value]
        try:
            return await self._submit(lambda: fn(self._connection()))
        except (sqlite3.Error, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def _write(self, statement: str, params: Any) -> int:
        """One write statement in its own transaction; returns the affected row count."""
        return await self._run(lambda c: write(c, lambda w: w.execute(statement, params).rowcount))

    def _notify(self) -> None:
        """Jobs became due: wake this instance's receivers and other processes' consumers."""
        self._notify_here()
        self._wakeup.notify()

    def _notify_here(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    # -- JobQueue ---------------------------------------------------------------------

    async def enqueue(
        self,
        task: str,
        payload: Mapping[str, Any],
        *,
        dedup_key: str | None = None,
        delay_seconds: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> str | None:
        payload_text, headers_text = encode_job(task, payload, headers, self.max_payload_bytes)
        job_id = new_ulid()
        delay = max(0.0, delay_seconds)
        # A receiver of this instance is waiting: insert the job leased to it (handoff.py).
        handoff = delay == 0 and self._handoff.wants()
        enqueued_at = 0.0

        def body(c: sqlite3.Connection) -> int:
            nonlocal enqueued_at
            now = enqueued_at = time.time()
            if dedup_key is not None:
                # A done job past retention frees its key at once, not at the next housekeeping.
                c.execute(sql.FREE_DEDUP_KEY, (dedup_key, now - self.done_retention_seconds))
            row = (job_id, task, payload_text, headers_text, dedup_key, now + delay, now)
            if handoff:
                return c.execute(sql.INSERT_LEASED, (*row, now + self.visibility_timeout)).rowcount
            return c.execute(sql.INSERT, row).rowcount

        if not await self._run(lambda c: write(c, body)):
            return None
        if handoff:
            row = (job_id, task, payload_text, headers_text, dedup_key, 1, enqueued_at)
            self._handoff.give(job_from_row(row, self.max_attempts))
            self._notify_here()
            self._release_orphans()  # in case the receiver stopped waiting meanwhile
        else:
            self._notify()
        return job_id

    def _release_orphans(self) -> None:
        """Handed jobs no receiver waits for any more go back to the queue, as if never
        claimed (a cancelled receive)."""
        orphans = self._handoff.orphans()
        if orphans:
            task = asyncio.get_running_loop().create_task(self._release_held(orphans))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)

    async def _release_held(self, jobs: list[Job]) -> None:
        held = [(job.id, job.attempt) for job in jobs]
        try:
            await self._run(lambda c: write(c, lambda w: w.executemany(sql.RELEASE, held)))
        except QueueUnavailable as exc:  # their leases will simply expire
            logger.warning("could not release jobs handed to a stopped receive: %s", exc)
            return
        self._notify()

    # -- JobConsumer ------------------------------------------------------------------

    async def receive(self, max_jobs: int, wait_seconds: float) -> list[Job]:
        if max_jobs <= 0:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait_seconds)
        if wait_seconds > 0:
            self._wakeup.listen(self._notify_here)
        while True:
            changed = self._changed
            handed = self._handoff.take(max_jobs)
            if handed:
                return handed
            jobs, next_due = await self._claim(max_jobs)
            if jobs:
                return jobs
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            # Enqueues arrive via `changed`: ours directly, other processes' as wake-up notes;
            # polling is the fallback for notes that cannot reach us.
            pause = min(remaining, self.poll_interval)
            if next_due is not None:
                pause = min(pause, max(0.0, next_due - time.time()) + _DUE_SLACK)
            self._handoff.open(max_jobs)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), pause)
            except BaseException:  # cancelled: what was handed to this wait goes back
                self._handoff.close(max_jobs)
                self._release_orphans()
                raise
            self._handoff.close(max_jobs)

    async def _claim(self, max_jobs: int) -> _Claim:
        if self._closed:
            raise QueueUnavailable(f"SQLite queue at {self.path!r} is closed")
        # Synchronous on the loop thread: nothing to cancel half-way.
        done, claimed = self._try_fast(lambda c: self._claim_sync(max_jobs, c))
        if done and claimed is not None:
            return claimed
        future = self._submit(lambda: self._claim_sync(max_jobs))
        try:
            # Shielded: a cancelled receive must not strand jobs its claim already leased.
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(self._release_abandoned)
            raise
        except (sqlite3.Error, OSError) as exc:
            raise self._unavailable(exc) from exc

    def _claim_sync(self, max_jobs: int, conn: sqlite3.Connection | None = None) -> _Claim:
        conn = conn or self._connection()
        now = time.time()
        if now - self._last_housekeeping >= self.housekeeping_interval:
            cutoff = now - self.done_retention_seconds
            purged = write(conn, lambda c: c.execute(
                sql.PURGE_DONE, (cutoff, self.purge_batch)).rowcount)
            # A full batch leaves more behind: the next claim takes the next batch.
            if purged < self.purge_batch:
                self._last_housekeeping = now
        params = {"lease": now + self.visibility_timeout, "now": now, "limit": max_jobs}
        rows = write(conn, lambda c: c.execute(sql.CLAIM, params).fetchall())
        if rows:
            rows.sort(key=lambda r: (r[7], r[0]))  # RETURNING order is unspecified
            return [job_from_row(row, self.max_attempts) for row in rows], None
        # Nothing due: say when something will be (a delayed job or an expiring lease).
        return [], conn.execute(sql.NEXT_DUE).fetchone()[0]

    def _release_abandoned(self, future: asyncio.Future[_Claim]) -> None:
        """Give back jobs claimed for a receive that was cancelled before it got them."""
        if future.cancelled() or future.exception() is not None:
            return
        held = [(job.id, job.attempt) for job in future.result()[0]]
        if not held or self._executor is None:
            return

        def release() -> None:
            write(self._connection(), lambda c: c.executemany(sql.RELEASE, held))

        try:
            released = asyncio.wrap_future(self._executor.submit(release))
        except RuntimeError:  # executor already shut down: the leases will simply expire
            return
        released.add_done_callback(self._after_release)

    def _after_release(self, future: asyncio.Future[None]) -> None:
        if future.exception() is not None:
            logger.warning("could not release jobs of a cancelled receive: %s", future.exception())
        else:
            self._notify()

    async def _update_held(self, job: Job, statement: str, values: tuple[Any, ...]) -> bool:
        changed = await self._write(statement, (*values, job.id, job.attempt))
        if not changed:
            # Its lease expired and another consumer has it (or it is gone): leave it alone.
            logger.warning("job %s attempt %s is no longer held; ignored", job.id, job.attempt)
        return bool(changed)

    async def ack(self, job: Job) -> None:
        await self._update_held(job, sql.ACK, (time.time(),))

    async def retry(self, job: Job, error: str, delay_seconds: float) -> None:
        available_at = time.time() + max(0.0, delay_seconds)
        if await self._update_held(job, sql.RETRY, (available_at, error)):
            self._notify()

    async def extend_lease(self, job: Job, seconds: float) -> None:
        await self._update_held(job, sql.EXTEND, (time.time() + seconds,))

    async def dead_letter(self, job: Job, error: str) -> None:
        def body(c: sqlite3.Connection) -> bool:
            row = c.execute(sql.TAKE_HELD, (job.id, job.attempt)).fetchone()
            if row is not None:
                c.execute(sql.INSERT_DEAD, (*row, error, time.time()))
            return row is not None

        if not await self._run(lambda c: write(c, body)):
            logger.warning("job %s attempt %s is no longer held; not dead-lettered", job.id,
                           job.attempt)

    # -- DeadLetterStore --------------------------------------------------------------

    async def list_dead(self, limit: int = 100) -> list[DeadLetter]:
        rows = await self._run(lambda c: c.execute(sql.LIST_DEAD, (limit,)).fetchall())
        return [dead_letter_from_row(row) for row in rows]

    async def replay(self, dead_letter_id: str) -> bool:
        """Queue the dead job again as a fresh job; its dedup key applies as for enqueue.

        If a job with the same key is already waiting, running or recently done, that job
        covers the work: the dead letter is removed and no second job is stored.
        """
        new_id = new_ulid()

        def body(c: sqlite3.Connection) -> bool:
            row = c.execute(sql.TAKE_DEAD, (dead_letter_id,)).fetchone()
            if row is None:
                return False
            task, payload, headers, dedup_key = row
            now = time.time()
            if dedup_key is not None:
                c.execute(sql.FREE_DEDUP_KEY, (dedup_key, now - self.done_retention_seconds))
            c.execute(sql.INSERT, (new_id, task, payload, headers, dedup_key, now, now))
            return True

        replayed = await self._run(lambda c: write(c, body))
        if replayed:
            self._notify()
        return replayed

    async def purge(self) -> int:
        return await self._write(sql.PURGE_DEAD, ())

    # -- operations -------------------------------------------------------------------

    async def ping(self) -> None:
        await self._run(lambda c: c.execute(sql.COUNT_DEAD).fetchone())

    async def depth(self) -> int:
        """Jobs waiting (delayed ones included) or running."""
        return int((await self._run(lambda c: c.execute(sql.DEPTH).fetchone()))[0])

    async def dead_count(self) -> int:
        return int((await self._run(lambda c: c.execute(sql.COUNT_DEAD).fetchone()))[0])

    async def close(self) -> None:
        """Close the connection and stop the thread; later calls raise QueueUnavailable."""
        if self._closed:
            return
        handed = self._handoff.drain()
        if handed:  # leased to receivers that will find the queue closed: back to the queue
            await self._release_held(handed)
        if self._releases:
            await asyncio.gather(*self._releases, return_exceptions=True)
        self._closed = True
        self._notify_here()  # waiting receivers wake and find the queue closed
        self._wakeup.close()
        if self._fast is not None and self._fast_thread == threading.get_ident():
            self._fast.close()
        self._fast = None
        executor, self._executor = self._executor, None
        if executor is not None:
            # Queued behind any work already submitted, which therefore finishes first.
            with contextlib.suppress(sqlite3.Error):
                await asyncio.get_running_loop().run_in_executor(executor, self._close_sync)
            executor.shutdown(wait=False)

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
