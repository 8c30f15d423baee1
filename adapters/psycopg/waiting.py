"""Waiting for a non-blocking psycopg2 connection on the event loop.

psycopg2's asynchronous mode sends a statement and returns at once; ``poll()`` says
whether the socket must become readable or writable before it can go on. Waiting for
that through the loop's selector keeps the loop free without a thread hop per statement,
which on a local database costs as much as the round trip itself.
"""

from __future__ import annotations

import asyncio

import psycopg2
import psycopg2.extensions as ext
from psycopg2.extensions import connection as Connection


async def wait_ready(connection: Connection) -> None:
    """Drive ``connection`` until its current operation finished (raises its error)."""
    loop = asyncio.get_running_loop()
    while True:
        state = connection.poll()
        if state == ext.POLL_OK:
            return
        fd = connection.fileno()
        ready: asyncio.Future[None] = loop.create_future()

        def wake(future: asyncio.Future[None] = ready) -> None:
            if not future.done():
                future.set_result(None)

        if state == ext.POLL_READ:
            loop.add_reader(fd, wake)
            try:
                await ready
            finally:
                loop.remove_reader(fd)
        elif state == ext.POLL_WRITE:
            loop.add_writer(fd, wake)
            try:
                await ready
            finally:
                loop.remove_writer(fd)
        else:  # pragma: no cover - psycopg2 documents no other state
            raise psycopg2.OperationalError(f"unexpected poll state {state}")
