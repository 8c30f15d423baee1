"""Record the SQL a repository sends, and ask the database how it reads the tables for it.

Three ways statements reach a database here, each with its own placeholders: SQLAlchemy
on SQLite (``?``), SQLAlchemy on PostgreSQL through asyncpg (``$1``), and the raw psycopg2
adapter (``%s``). Each is explained by the same driver style it was sent with.

- ``plan_lines``: one line per read of a table (SQLite's EXPLAIN QUERY PLAN details;
  PostgreSQL's scan nodes, planned with sequential scans off, since a tiny test table is
  scanned anyway and what matters is that an index *can* serve the query);
- ``work``: how much reading the statements cost: SQLite's virtual machine steps, or the
  rows PostgreSQL read (kept or filtered out) under EXPLAIN ANALYZE.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from typing import Any, Literal

import asyncpg
import psycopg2
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.psycopg.session import PgSession

TABLES = ("messages", "conversations")
Driver = Literal["sqlite", "asyncpg", "psycopg"]
Statement = tuple[str, Any]

# SQLite: SEARCH uses an index's key, SCAN reads a table (or an index) through.
# PostgreSQL (sequential scans off): a Seq Scan, or an index scan with no condition.
THROUGH = (*(f"SCAN {table}" for table in TABLES), "Seq Scan", "Full Index Scan")


def is_read(sql: str) -> bool:
    return sql.lstrip().upper().startswith("SELECT")


@contextmanager
def recorded_sqlalchemy(engine: AsyncEngine) -> Iterator[list[Statement]]:
    statements: list[Statement] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
               _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@contextmanager
def recorded_psycopg(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Statement]]:
    statements: list[Statement] = []
    execute = PgSession._execute

    async def record(session: PgSession, query: bytes, params: Sequence[Any]) -> Any:
        statements.append((query.decode(), list(params)))
        return await execute(session, query, params)

    with monkeypatch.context() as patch:
        patch.setattr(PgSession, "_execute", record)
        yield statements


def _reads(node: dict[str, Any]) -> Iterator[str]:
    """One line per read of a table: its kind, index and index condition."""
    if node.get("Relation Name") in TABLES:
        kind = node["Node Type"]
        if kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node:
            kind = "Full Index Scan"  # the index read through, in its order
        yield (f"{kind} on {node['Relation Name']} {node.get('Index Name', '')} "
               f"{node.get('Index Cond', '')}")
    for child in node.get("Plans", []):
        yield from _reads(child)


def _rows_read(node: dict[str, Any]) -> int:
    read = 0
    if node.get("Relation Name") in TABLES:
        per_loop = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
                    + node.get("Rows Removed by Index Recheck", 0))
        read = per_loop * node.get("Actual Loops", 1)
    return read + sum(_rows_read(child) for child in node.get("Plans", []))


async def _postgres_plans(driver: Driver, url: str, statements: list[Statement],
                          explain: str) -> list[dict[str, Any]]:
    """Each statement's plan tree, explained through the driver that sent it."""
    if driver == "psycopg":
        with closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
            cur.execute("SET enable_seqscan = off")
            trees = []
            for sql, params in statements:
                cur.execute(f"{explain} {sql}", params)
                trees.append(cur.fetchone()[0][0]["Plan"])
            conn.rollback()  # EXPLAIN ANALYZE runs the statement
            return trees
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            return [json.loads(await conn.fetchval(f"{explain} {sql}", *params))[0]["Plan"]
                    for sql, params in statements]
    finally:
        await conn.close()


def _sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


async def plan_lines(driver: Driver, url: str, statements: list[Statement]) -> list[str]:
    if driver == "sqlite":
        with closing(sqlite3.connect(_sqlite_path(url))) as conn:
            return [f"{detail}: {sql}" for sql, params in statements
                    for *_, detail in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    trees = await _postgres_plans(driver, url, statements, "EXPLAIN (FORMAT JSON)")
    return [f"{read}: {sql}" for (sql, _), tree in zip(statements, trees, strict=True)
            for read in _reads(tree)]


async def work(driver: Driver, url: str, statements: list[Statement]) -> int:
    if driver != "sqlite":
        trees = await _postgres_plans(driver, url, statements, "EXPLAIN (ANALYZE, FORMAT JSON)")
        return sum(_rows_read(tree) for tree in trees)
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    with closing(sqlite3.connect(_sqlite_path(url))) as conn:
        conn.set_progress_handler(step, 1)
        for sql, params in statements:
            conn.execute(sql, params).fetchall()
    return steps
