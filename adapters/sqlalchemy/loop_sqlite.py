"""SQLite files on the event loop's own thread, for the embedded defaults.

Through aiosqlite every statement is a hop to a connection thread and back through the
loop: a webhook's unit of work (lookup, conversation, insert, update, commit) took about
ten hops, each waiting for a turn of a loop busy with the other requests, while holding
SQLite's write lock; the other pooled connections meanwhile slept in SQLite's busy
handler. Measured (bench/bench_intake.py): 0.03x of one plain insert per request.

Here a unit runs its statements directly with the sqlite3 module on the loop thread. A
statement on a local file takes microseconds (WAL, synchronous=NORMAL: no fsync at
commit), and a unit whose statements follow each other without awaiting anything else
never yields, so it holds the write lock only for as long as it computes. Connections
never wait inside SQLite (``busy_timeout = 0``): when another process holds the write
lock, ``BEGIN IMMEDIATE`` fails at once and is retried after a short ``asyncio.sleep``,
so the loop keeps serving meanwhile. The process's units share that transaction and its
COMMIT (``group_commit.py``), and run statements built once as their compiled SQL
(``prepared.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.engine import Result
from sqlalchemy.sql import Executable

from adapters.sqlalchemy.engine import SQLITE_PRAGMAS, translate_errors
from adapters.sqlalchemy.group_commit import WriteBatch
from adapters.sqlalchemy.prepared import PreparedStatements

# Backoff between attempts to take the write lock; the deadline is the pool timeout.
_FIRST_RETRY_SECONDS = 0.0005
_MAX_RETRY_SECONDS = 0.02


def is_locked(error: BaseException) -> bool:
    orig = getattr(error, "orig", error)
    return getattr(orig, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED") or (
        "database is locked" in str(orig))


def create_loop_engine(path: Path, url: str, *, pool_size: int) -> Engine:
    """A sync (pysqlite) engine for ``path`` whose connections never wait on locks."""

    engine = create_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=0.1)

    @event.listens_for(engine, "do_connect")
    def _make_directory(*_args: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's events begin transactions
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout=0")
            _retry_locked(lambda: cursor.execute("PRAGMA journal_mode=WAL"))
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    # The write lock up front (see engine.py); here it fails at once when taken. Set on the
    # dialect, not as a "begin" event: any engine-level event makes every statement of
    # every connection run SQLAlchemy's event dispatch (a sixth of a unit's CPU).
    engine.dialect.do_begin = _begin_immediate  # type: ignore[method-assign]
    return engine


def _begin_immediate(dbapi_connection: Any) -> None:
    dbapi_connection.execute("BEGIN IMMEDIATE")


def _retry_locked(call: Any) -> None:
    # Switching to WAL needs a moment without other writers; only at connect.
    deadline = time.monotonic() + 5.0
    while True:
        try:
            call()
            return
        except Exception as error:
            if not is_locked(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


class LoopSession:
    """The part of ``AsyncSession`` the repositories use: one unit of work, a savepoint in
    the process's shared write transaction (``group_commit.py``).

    Statements run synchronously on the loop thread; the unit's first statement enters the
    batch, which takes the write lock first if no unit holds it (see the module docstring).
    """

    def __init__(self, engine: Engine, batch: WriteBatch, prepared: PreparedStatements) -> None:
        self._engine = engine
        self._batch = batch
        self._prepared = prepared
        self._unit: str | None = None  # the unit's savepoint, while it is inside
        self._savepoints = 0

    def get_bind(self) -> Engine:
        return self._engine

    async def execute(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> Result[Any]:
        connection = await self._begun()
        fast = self._prepared.execute(connection, statement, params)
        if fast is not None:
            return fast  # its rows are fetched already
        result = connection.execute(statement, params)
        if result.returns_rows and self._savepoints:
            # Fetched now, as AsyncSession does: SQLite cannot release a savepoint while a
            # statement still has rows to give. Outside savepoints (the hot paths) callers
            # consume the rows before they await anything, so copying them is saved.
            return result.freeze()()
        return result

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        connection = await self._begun()
        self._savepoints += 1
        try:
            with connection.begin_nested():
                yield
        finally:
            self._savepoints -= 1

    async def commit(self) -> None:
        unit, self._unit = self._unit, None
        if unit is not None:
            await self._batch.commit(unit)

    async def rollback(self) -> None:
        unit, self._unit = self._unit, None
        if unit is not None:
            self._batch.rollback(unit)

    async def close(self) -> None:
        await self.rollback()  # what was not committed

    async def _begun(self) -> Connection:
        if self._unit is None:
            self._unit = await self._batch.enter()
        return self._batch.connection


class LoopSessionFactory:
    """Makes ``LoopSession``s over one engine, whose units share one connection and write
    transaction."""

    def __init__(self, engine: Engine, *, lock_timeout: float) -> None:
        self.engine = engine
        self._lock_timeout = lock_timeout
        self._connection: Connection | None = None
        self._batch = WriteBatch(self._begin, lock_timeout)
        self._prepared = PreparedStatements(engine.dialect)

    def __call__(self) -> LoopSession:
        return LoopSession(self.engine, self._batch, self._prepared)

    async def _begin(self) -> Connection:
        """The connection, in a new transaction holding SQLite's write lock."""
        if self._connection is None or self._connection.invalidated:
            self._connection = self.engine.connect()
        connection = self._connection
        delay = _FIRST_RETRY_SECONDS
        deadline = time.monotonic() + self._lock_timeout
        while True:
            try:
                connection.begin()
                return connection
            except exc.OperationalError as error:
                if not is_locked(error) or time.monotonic() > deadline:
                    raise
                connection.rollback()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_SECONDS)

    async def ping(self) -> None:
        session = self()
        try:
            with translate_errors(any_error=True):
                await session.execute(text("SELECT 1"))
        finally:
            await session.close()

    async def dispose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
        self.engine.dispose()
