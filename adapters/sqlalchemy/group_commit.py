"""One SQLite write transaction shared by the units of work of a loop iteration.

A commit on a local SQLite file costs more than the statements it commits: every page the
transaction touched (a message row is a page of the table and one of each of its indexes)
goes to the WAL again, and the checkpoints that follow copy them back. Measured with the
flow's own insert and update: about 400 µs per commit alone, 85 µs per unit when 32 units
share one (end to end: ``python -m bench delivery``).

So a unit of work here is a savepoint inside a transaction the process's units share.
Units still run one at a time, as the write lock made them before (savepoints nest, so
two units inside at once would release each other's): committing a unit releases its
savepoint, lets the next unit in, and waits for the shared COMMIT, which runs once the
units of this loop iteration are through; rolling a unit back undoes its savepoint alone.
``commit()`` still returns only once the unit's writes are durable, and raises if the
shared COMMIT failed, so "answered 200 => stored" holds as before. What changes: a unit
reads what earlier units of its batch wrote before that is durable (they commit together
or fail together). Other processes wait for the write lock as before (``loop_sqlite.py``).

A unit that stays inside across awaits holds the batch open: new units then wait for the
COMMIT (at most the lock timeout) rather than join, so a batch always ends. A unit whose
wait for the COMMIT runs past the lock timeout fails (503) though its writes may still
commit, as after a crash between commit and answer: redeliveries are idempotent.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Connection, exc


def _locked(message: str) -> exc.OperationalError:
    """A lock wait that ran out, as SQLite's own "database is locked" would be raised."""
    return exc.OperationalError(message, None, sqlite3.OperationalError("database is locked"))


def _expire(waiter: asyncio.Future[None], message: str) -> None:
    if not waiter.done():
        waiter.set_exception(_locked(message))


class WriteBatch:
    """The shared transaction; ``begin`` opens it (taking SQLite's write lock)."""

    def __init__(self, begin: Callable[[], Awaitable[Connection]], lock_timeout: float) -> None:
        self._begin = begin
        self._lock_timeout = lock_timeout
        self._connection: Connection | None = None
        self._turn = asyncio.Lock()  # held by the unit inside, while it is inside
        self._names = itertools.count()
        self._waiting: list[asyncio.Future[None]] = []  # released, waiting for COMMIT
        self._flush: asyncio.Handle | None = None
        self._closing: asyncio.Future[None] | None = None  # no new units until COMMIT
        self._broken: BaseException | None = None  # SQLite ended the transaction itself

    @property
    def connection(self) -> Connection:
        if self._connection is None:  # pragma: no cover - units enter before executing
            raise RuntimeError("no unit has entered the batch")
        return self._connection

    async def enter(self) -> str:
        """Open a savepoint for a new unit, beginning the shared transaction if needed."""
        while self._closing is not None:
            await self._within_timeout(asyncio.shield(self._closing), "the previous batch")
        if self._turn.locked():
            await self._within_timeout(self._turn.acquire(), "the unit of work inside")
        else:
            await self._turn.acquire()  # free: taken without waiting
        try:
            if self._connection is None or not self._connection.in_transaction():
                self._connection = await self._begin()
            name = f"wta_unit_{next(self._names)}"
            self._execute(f"SAVEPOINT {name}")
        except BaseException:
            self._turn.release()
            raise
        return name

    async def commit(self, name: str) -> None:
        """Release the unit's savepoint and wait until the shared COMMIT made it durable."""
        try:
            self._execute(f"RELEASE {name}")
        except exc.DBAPIError as error:
            self._break(error)  # the transaction is in doubt: the batch rolls back
            self._leave()
            raise
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiting.append(waiter)
        self._leave()
        deadline = loop.call_later(self._lock_timeout, _expire, waiter,
                                   f"waited {self._lock_timeout:g} s for the shared commit")
        try:
            await waiter
        finally:
            deadline.cancel()

    def rollback(self, name: str) -> None:
        """Undo the unit's writes alone."""
        try:
            self._execute(f"ROLLBACK TO {name}")
            self._execute(f"RELEASE {name}")
        except exc.DBAPIError as error:
            # Some failures (a full disk, an I/O error) make SQLite roll back the whole
            # transaction: the savepoint is gone, and so are the other units' writes.
            self._break(error)
        finally:
            self._leave()

    def _dbapi(self) -> Any:
        return self.connection.connection.dbapi_connection

    def _execute(self, statement: str) -> None:
        try:
            self._dbapi().execute(statement)
        except sqlite3.Error as error:
            # Wrapped as SQLAlchemy wraps it, so callers' error handling is the same.
            raise exc.DBAPIError.instance(statement, None, error, sqlite3.Error) from error

    def _break(self, error: BaseException) -> None:
        if self._broken is None:
            self._broken = error

    def _leave(self) -> None:
        self._turn.release()
        if self._flush is None:
            # After the callbacks already ready: the units of this iteration join first.
            self._flush = asyncio.get_running_loop().call_soon(self._commit_batch)

    def _commit_batch(self) -> None:
        self._flush = None
        if self._turn.locked():
            # A unit is still inside (it awaited something mid-way): it commits with this
            # batch, and no new unit joins; its leaving schedules this again.
            if self._closing is None:
                self._closing = asyncio.get_running_loop().create_future()
            return
        waiting, self._waiting = self._waiting, []
        closing, self._closing = self._closing, None
        error, self._broken = self._broken, None
        connection = self._connection
        try:
            if connection is not None and connection.in_transaction():
                if error is None:
                    connection.commit()
                else:
                    connection.rollback()
        except Exception as failed:
            error = failed if error is None else error  # the first failure is the news
            self._discard(connection)
        for waiter in waiting:
            if waiter.done():
                continue  # its unit gave up waiting (cancelled, or timed out)
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
        if closing is not None:
            closing.set_result(None)

    def _discard(self, connection: Connection | None) -> None:
        """After a failed COMMIT: end whatever is left of the transaction."""
        if connection is None:
            return
        try:
            connection.rollback()
            # A COMMIT refused by a deferred constraint leaves SQLite's transaction open,
            # where SQLAlchemy already counts it ended.
            dbapi = connection.connection.dbapi_connection
            if dbapi is not None and dbapi.in_transaction:
                dbapi.rollback()
        except Exception:
            connection.invalidate()
            self._connection = None

    async def _within_timeout(self, awaitable: Awaitable[object], what: str) -> None:
        try:
            await asyncio.wait_for(awaitable, self._lock_timeout)
        except TimeoutError:
            raise _locked(f"waited {self._lock_timeout:g} s for {what}") from None
