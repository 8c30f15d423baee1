"""The original project's SQLite queue design, rebuilt as the benchmark's baseline.

One connection per call, ``BEGIN EXCLUSIVE``, and a claim done as SELECT then UPDATE, in
the default rollback journal. Each call runs in a thread, as the original did from async
code. Kept only to measure against; nothing in the project uses it.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, task TEXT NOT NULL, payload TEXT NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, run_at REAL NOT NULL
)
"""


class BaselineSqliteQueue:
    def __init__(self, path: str) -> None:
        self.path = path
        with self._connect() as conn:
            conn.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def _enqueue(self, task: str, payload: dict[str, Any]) -> str:
        job_id = uuid.uuid4().hex
        conn = self._connect()
        try:
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("INSERT INTO jobs VALUES (?, ?, ?, 'pending', 0, ?)",
                         (job_id, task, json.dumps(payload), time.time()))
            conn.execute("COMMIT")
        finally:
            conn.close()
        return job_id

    def _claim(self) -> tuple[str, str, dict[str, Any]] | None:
        conn = self._connect()
        try:
            conn.execute("BEGIN EXCLUSIVE")
            row = conn.execute(
                "SELECT id, task, payload FROM jobs WHERE status = 'pending' AND run_at <= ? "
                "ORDER BY run_at LIMIT 1", (time.time(),)
            ).fetchone()
            if row is not None:
                conn.execute("UPDATE jobs SET status = 'running', attempts = attempts + 1 "
                             "WHERE id = ?", (row[0],))
            conn.execute("COMMIT")
        finally:
            conn.close()
        return None if row is None else (row[0], row[1], json.loads(row[2]))

    def _ack(self, job_id: str) -> None:
        conn = self._connect()
        try:
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            conn.execute("COMMIT")
        finally:
            conn.close()

    async def enqueue(self, task: str, payload: dict[str, Any]) -> str:
        return await asyncio.to_thread(self._enqueue, task, payload)

    async def claim(self) -> tuple[str, str, dict[str, Any]] | None:
        return await asyncio.to_thread(self._claim)

    async def ack(self, job_id: str) -> None:
        await asyncio.to_thread(self._ack, job_id)
