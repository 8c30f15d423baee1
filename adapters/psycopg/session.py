"""One unit of work's connection: borrowed on first use, transaction begun on first write.

Reads ahead of the first write run outside a transaction. At READ COMMITTED every
statement takes its own snapshot anyway, so they see exactly what they would inside one,
and a unit that only reads costs no BEGIN/ROLLBACK round trips. The first write sends
``BEGIN`` in the same round trip; later writes run behind a savepoint, so a refused write
(a duplicate) leaves the unit usable, as the port promises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import TRANSACTION_STATUS_INERROR
from psycopg2.extensions import cursor as Cursor

from adapters.psycopg.errors import is_connection_lost, translate
from adapters.psycopg.pool import ConnectionPool, Pooled
from adapters.psycopg.waiting import wait_ready
from application.errors import StorageUnavailable

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Cached:
    """A fixed statement, rendered to text once per pool under ``key``."""

    key: str
    composed: sql.Composable


Statement: TypeAlias = sql.Composable | Cached

_BEGIN = b"BEGIN; "
_SAVEPOINT = b"SAVEPOINT w; "


class PgSession:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._pooled: Pooled | None = None
        self._in_transaction = False
        self._broken = False

    # -- statements -------------------------------------------------------------------
    async def fetch_all(self, statement: Statement, params: Sequence[Any] = ()) -> list[Row]:
        cur = await self._checked(statement, params)
        rows: list[Row] = cur.fetchall()
        return rows

    async def fetch_one(self, statement: Statement, params: Sequence[Any] = ()) -> Row | None:
        cur = await self._checked(statement, params)
        row: Row | None = cur.fetchone()
        return row

    async def write(
        self, statement: Statement, params: Sequence[Any] = (), *, returning: bool = False
    ) -> tuple[int, list[Row]]:
        """Run a write inside the unit's transaction; (rowcount, returned rows)."""
        first = not self._in_transaction
        connection = await self._connection()
        prefix = _BEGIN if first else _SAVEPOINT
        try:
            cur = await self._execute(prefix + self._render(connection, statement), params)
        except psycopg2.Error as error:
            if (not self._broken
                    and connection.info.transaction_status == TRANSACTION_STATUS_INERROR):
                # Undo the failed statement only: all of it when it opened the transaction.
                await self._checked_raw(b"ROLLBACK" if first else b"ROLLBACK TO SAVEPOINT w")
            raise self._translated(error) from error
        self._in_transaction = True
        return cur.rowcount, (cur.fetchall() if returning else [])

    # -- transaction ------------------------------------------------------------------
    async def commit(self) -> None:
        if self._in_transaction:
            await self._checked_raw(b"COMMIT")
            self._in_transaction = False

    async def rollback(self) -> None:
        if self._in_transaction:
            await self._checked_raw(b"ROLLBACK")
            self._in_transaction = False

    async def close(self) -> None:
        """Roll back what was not committed and give the connection back."""
        if self._pooled is None:
            return
        discard = self._broken
        if self._in_transaction and not discard:
            try:
                await self._checked_raw(b"ROLLBACK")
            except Exception:
                discard = True
        pooled, self._pooled = self._pooled, None
        self._in_transaction = False
        self._pool.release(pooled, discard=discard or self._broken)

    # -- internals --------------------------------------------------------------------
    async def _connection(self) -> Any:
        if self._broken:
            raise StorageUnavailable("the database connection was lost in this unit of work")
        if self._pooled is None:
            self._pooled = await self._pool.acquire()
        return self._pooled.connection

    def _render(self, connection: Any, statement: Statement) -> bytes:
        if not isinstance(statement, Cached):
            text: str = statement.as_string(connection)
            return text.encode()
        cache = self._pool.statements
        rendered = cache.get(statement.key)
        if rendered is None:
            # Identifier quoting does not depend on the connection: render once, reuse.
            rendered = cache[statement.key] = statement.composed.as_string(connection).encode()
        return rendered

    async def _checked(self, statement: Statement, params: Sequence[Any]) -> Cursor:
        connection = await self._connection()
        return await self._checked_raw(self._render(connection, statement), params)

    async def _checked_raw(self, query: bytes, params: Sequence[Any] = ()) -> Cursor:
        try:
            return await self._execute(query, params)
        except psycopg2.Error as error:
            raise self._translated(error) from error

    async def _execute(self, query: bytes, params: Sequence[Any]) -> Cursor:
        """Send ``query`` and wait for its result on the loop; raw driver errors."""
        connection = await self._connection()
        cur = connection.cursor()
        try:
            cur.execute(query, params)
            await wait_ready(connection)
        except asyncio.CancelledError:
            # The statement may still run: this connection's state is unknown from now on.
            self._broken = True
            self._in_transaction = False
            raise
        except psycopg2.Error as error:
            if is_connection_lost(error):
                self._broken = True
                self._in_transaction = False
                self._pool.server_gone()
            raise
        return cur

    def _translated(self, error: psycopg2.Error) -> Exception:
        translated = translate(error)
        return error if translated is None else translated
