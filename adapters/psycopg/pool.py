"""A lazy, bounded connection pool whose callers wait (up to a timeout) on the event loop.

psycopg2's own pools open ``minconn`` connections when built and raise ``PoolError`` at
once when exhausted. This one opens nothing until asked and waits for a free connection
for at most ``timeout`` seconds. Its connections are psycopg2's non-blocking ones
(``async_=True``), driven by the event loop's selector (see ``waiting.py``): nothing
blocks the loop, and no statement pays a hop to a worker thread.

Use it from one event loop; acquiring and releasing happen on that loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from psycopg2.extensions import connection as Connection

from adapters.psycopg.dsn import libpq_dsn
from adapters.psycopg.errors import UNAVAILABLE_MESSAGE
from adapters.psycopg.waiting import wait_ready
from application.errors import StorageUnavailable

Connect = Callable[..., Connection]

# Connections above the minimum are closed once they sat idle this long.
IDLE_SECONDS = 60.0


@dataclass(eq=False, slots=True)
class Pooled:
    connection: Connection
    generation: int
    idle_since: float = field(default_factory=time.monotonic)


class ConnectionPool:
    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 10.0,
        connect: Connect = psycopg2.connect,
    ) -> None:
        if max_size < 1 or min_size < 0:
            raise ValueError("pool sizes: max_size >= 1 and min_size >= 0")
        self._dsn = libpq_dsn(dsn)
        self._min = min(min_size, max_size)
        self.max_size = max_size
        self.timeout = timeout
        self._connect_fn = connect
        self._idle: deque[Pooled] = deque()
        self._open = 0  # connections open or being opened, idle or lent out
        self._generation = 0  # bumped when the server went away: older connections are dead
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self.statements: dict[str, bytes] = {}  # rendered SQL, shared by all connections

    # -- lending ----------------------------------------------------------------------
    async def acquire(self) -> Pooled:
        """A connection, waiting at most ``timeout`` seconds; raises ``StorageUnavailable``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            if self._closed:
                raise StorageUnavailable("the connection pool is closed")
            if self._idle:
                return self._idle.pop()  # the most recently used: the likeliest alive
            if self._open < self.max_size:
                self._open += 1
                return await self._open_connection()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StorageUnavailable(
                    f"no database connection became free within {self.timeout:g} s "
                    f"(all {self.max_size} in use; see DATABASE_POOL_MAX_CONN)"
                )
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass  # loop once more: raises with the message above unless one came free
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self, pooled: Pooled, *, discard: bool = False) -> None:
        """Give a connection back; ``discard`` closes it (broken, or state unknown).

        Closing a non-blocking connection only sends a goodbye and frees the socket.
        """
        if discard or self._closed or pooled.generation != self._generation:
            self._close_later(pooled)
        else:
            pooled.idle_since = time.monotonic()
            self._idle.append(pooled)
            self._trim()
        self._wake_one()

    def server_gone(self) -> None:
        """A connection found the server gone: drop every idle connection, they are dead too.

        Without this, requests after the database comes back would keep drawing dead
        connections from the pool one failure at a time.
        """
        self._generation += 1
        while self._idle:
            self._close_later(self._idle.popleft())

    async def close(self) -> None:
        self._closed = True
        self.server_gone()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- internals --------------------------------------------------------------------
    async def _open_connection(self) -> Pooled:
        generation = self._generation
        try:
            connection = await self._connect()
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise
        return Pooled(connection, generation)

    async def _connect(self) -> Connection:
        options: dict[str, Any] = {"application_name": "whatsapp-core"}
        try:
            # Non-blocking connections are always in autocommit mode: transactions begin
            # with an explicit BEGIN, on the first write (see PgSession).
            connection = self._connect_fn(self._dsn, async_=True, **options)
        except psycopg2.Error as error:
            raise StorageUnavailable(UNAVAILABLE_MESSAGE) from error
        try:
            await asyncio.wait_for(wait_ready(connection), self.timeout)
        except (psycopg2.Error, OSError, TimeoutError) as error:
            _quiet_close(connection)
            # libpq's text names host and user (never the password); keep ours generic.
            raise StorageUnavailable(UNAVAILABLE_MESSAGE) from error
        except BaseException:
            _quiet_close(connection)
            raise
        return connection

    def _close_later(self, pooled: Pooled) -> None:
        self._open -= 1
        _quiet_close(pooled.connection)

    def _trim(self) -> None:
        cutoff = time.monotonic() - IDLE_SECONDS
        while len(self._idle) > self._min and self._idle[0].idle_since < cutoff:
            self._close_later(self._idle.popleft())

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _quiet_close(connection: Connection) -> None:
    # A broken connection has nothing left to release.
    with contextlib.suppress(psycopg2.Error):
        connection.close()
