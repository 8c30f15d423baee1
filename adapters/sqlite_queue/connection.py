"""Opening the queue file and running write transactions that wait out other writers.

The queue file belongs to the queue backend alone (not the Alembic-managed app database),
so its schema is created here, idempotently, when the first connection opens.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
# How long a writer keeps retrying after busy_timeout expired before the queue gives up.
_BUSY_GIVE_UP_SECONDS = 30.0
_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED; extended codes share the low byte

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        task TEXT NOT NULL,
        payload TEXT NOT NULL,
        headers TEXT NOT NULL,
        dedup_key TEXT,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done')),
        attempt INTEGER NOT NULL DEFAULT 0,
        available_at REAL NOT NULL,
        leased_until REAL,
        enqueued_at REAL NOT NULL,
        last_error TEXT,
        finished_at REAL
    )
    """,
    # NULLs are distinct in a SQLite unique index, so jobs without a key never conflict.
    "CREATE UNIQUE INDEX IF NOT EXISTS jobs_dedup_key ON jobs (dedup_key)",
    "CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, available_at)",
    "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (state, leased_until)",
    "CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (state, finished_at)",
    """
    CREATE TABLE IF NOT EXISTS dead_letters (
        id TEXT PRIMARY KEY,
        task TEXT NOT NULL,
        payload TEXT NOT NULL,
        headers TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT NOT NULL,
        failed_at REAL NOT NULL,
        dedup_key TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS dead_letters_failed_at ON dead_letters (failed_at, id)",
)


def is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return (code & 0xFF) in _BUSY_CODES
    message = str(exc).lower()
    return "locked" in message or "busy" in message


def _retry_busy(action: Callable[[], T]) -> T:
    """Run ``action`` again while it fails only because another connection holds a lock."""
    give_up = time.monotonic() + _BUSY_GIVE_UP_SECONDS
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= give_up:
                raise
            time.sleep(0.01)  # busy_timeout already waited; this only spans rare edge cases


class NonBlockingConnection(sqlite3.Connection):
    """A connection that never waits for a lock: busy_timeout 0, no retries.

    Used on the event loop thread for the uncontended case; SQLITE_BUSY from it means
    "another connection holds the lock", and the caller falls back to the queue thread.
    """


def open_nonblocking(path: str) -> sqlite3.Connection:
    """Open a second connection to an existing queue file (schema already created)."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=True,
                           factory=NonBlockingConnection)
    try:
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def write(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``body`` in BEGIN IMMEDIATE ... COMMIT.

    IMMEDIATE takes the write lock up front (waiting through busy_timeout), so a read
    inside the transaction can never be invalidated by another writer (no
    SQLITE_BUSY_SNAPSHOT, which the busy handler would not retry). On a non-blocking
    connection a busy lock is raised at once instead, after rolling back.
    """
    if isinstance(conn, NonBlockingConnection):
        conn.execute("BEGIN IMMEDIATE")
    else:
        _retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
    try:
        result = body(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def open_connection(path: str) -> sqlite3.Connection:
    """Open (creating the directory, file and schema if needed) an autocommit connection."""
    if path != ":memory:":
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
    conn = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,  # autocommit: transactions are explicit BEGIN IMMEDIATE
        check_same_thread=True,  # each connection stays on its queue's own thread
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Switching to WAL needs a moment of exclusive access when another process opens
        # the file at the same time; it is persistent, so later opens are no-ops.
        _retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
        conn.execute("PRAGMA synchronous = NORMAL")

        def create(c: sqlite3.Connection) -> None:
            for statement in _SCHEMA:
                c.execute(statement)

        write(conn, create)
    except BaseException:
        conn.close()
        raise
    return conn
