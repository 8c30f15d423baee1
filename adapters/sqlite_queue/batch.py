"""The loop connection's queue writes of one loop iteration, committed together.

A COMMIT costs more than the writes it commits (every page touched goes to the WAL, and
checkpoints copy it back: about 300-400 µs each here), and an embedded process writes the
queue several times per message: the webhook's enqueue, the worker's claim and ack. So
writes on the loop thread's connection (``NonBlockingConnection``) share one transaction:
the first takes the write lock (``BEGIN IMMEDIATE``, failing at once if another connection
holds it), each runs in a savepoint of its own, and one COMMIT follows once the loop's
ready callbacks have run. A writer awaits ``durable()`` before acting on its write, so an
enqueue is committed before the webhook answers, as before. If the COMMIT fails, every
writer of the batch gets the error.

Writes are synchronous and never interleave (one thread), so the savepoints never nest.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_SAVEPOINT = "wta_queue_write"


class LoopBatch:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._pending = False  # writes waiting for the COMMIT
        self._broken: sqlite3.Error | None = None  # SQLite ended the transaction itself
        self._waiting: list[asyncio.Future[None]] = []
        self._flush: asyncio.Handle | None = None

    def write(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``body`` in the batch. SQLITE_BUSY from the first write leaves nothing
        written (the caller may run it elsewhere); a failing body undoes only itself."""
        conn = self._conn
        if not self._pending:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._pending = True
            return result
        conn.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            result = body(conn)
        except BaseException:
            try:
                conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
                conn.execute(f"RELEASE {_SAVEPOINT}")
            except sqlite3.Error as error:
                # A full disk or an I/O error rolls back the whole transaction: the
                # earlier writes of the batch are gone too.
                self._broken = self._broken or error
            raise
        conn.execute(f"RELEASE {_SAVEPOINT}")
        return result

    def durable(self) -> asyncio.Future[None]:
        """Done once the batch's writes so far are committed (at once if there are none);
        failed with the COMMIT's error if it failed."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if not self._pending and self._broken is None:
            waiter.set_result(None)
            return waiter
        self._waiting.append(waiter)
        if self._flush is None:
            # After the callbacks already ready, so this iteration's writers join first.
            self._flush = loop.call_soon(self.commit)
        return waiter

    def commit(self) -> None:
        """Commit now (also before the connection closes)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        waiting, self._waiting = self._waiting, []
        error, self._broken = self._broken, None
        conn = self._conn
        if self._pending:
            self._pending = False
            try:
                if error is not None:
                    raise error
                conn.execute("COMMIT")
            except sqlite3.Error as failed:
                error = error or failed
                if conn.in_transaction:
                    # If even this fails the connection is unusable; its next use says so.
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
        for waiter in waiting:
            if waiter.done():
                continue  # its writer was cancelled; the outcome stands all the same
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
