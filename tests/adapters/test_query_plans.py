"""The queries the conversation flow makes for each message are served by an index, on
SQLite and on PostgreSQL: none of them reads the whole ``messages`` table, whose size
grows with everything ever received.

Each test runs the flow's own queries (through the SQLAlchemy repositories, on the schema
Alembic builds), records the SQL they sent, and asks the database for its plan. On
PostgreSQL sequential scans are disabled for the plan: a tiny test table would be scanned
anyway, and what matters is that an index *can* serve the query.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.base import SqlaRepository
from adapters.sqlalchemy.engine import create_engine_for, make_session_factory
from adapters.sqlalchemy.unit_of_work import SqlaUnitOfWork
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.repository import Condition
from application.ports.unit_of_work import UnitOfWork
from application.use_cases.read_conversations import ConversationsQuery, ListConversations
from application.use_cases.stalled_messages import RepliesNeverGenerated, RepliesNeverSent
from application.use_cases.window import contact_block, window_is_open
from domain.message import DeliveryStatus, Direction
from tests.adapters.alembic_helpers import migrate
from tests.contracts.entities import registry_for
from tests.contracts.repositories import CHANNEL, CONTACT, OWNER, T0, conversation, message

REGISTRY = registry_for("sqlalchemy", SqlaRepository)
TABLES = ("messages", "conversations")
# Other contacts' history: enough rows that reading them all is not what an index does.
HISTORY_CONTACTS = 40
OTHER_OWNER = "AC00000000000000000000000000000002"
Run = Callable[[UnitOfWork], Awaitable[object]]


@dataclass
class Database:
    engine: AsyncEngine
    url: str
    dialect: str

    def uow(self) -> UnitOfWork:
        return SqlaUnitOfWork(make_session_factory(self.engine), REGISTRY)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plans") / "app.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_database")
        migrate(url)
    else:
        path = tmp_path / "app.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    engine = create_engine_for(url)
    database = Database(engine, url, request.param)
    await _seed(database)
    yield database
    await engine.dispose()


async def _history(db: Database, first: int) -> None:
    """Another owner's contacts' closed conversations, three days old (older than any
    window)."""
    old = T0 - timedelta(days=3)
    async with db.uow() as uow:
        conversations = uow.repository(ConversationRepository)
        messages = uow.repository(MessageRepository)
        for i in range(first, first + HISTORY_CONTACTS):
            other = f"whatsapp:+551190000{i:04d}"
            conv = conversation(owner_id=OTHER_OWNER, contact=other)
            await conversations.create(conv)
            for _ in range(5):
                inbound = message(conv.id, owner_id=OTHER_OWNER, from_address=other,
                                  created_at=old, updated_at=old)
                await messages.create(inbound)
                await messages.create(message(
                    conv.id, owner_id=OTHER_OWNER, direction=Direction.OUTBOUND,
                    from_address=CHANNEL, to_address=other, status=DeliveryStatus.DELIVERED,
                    provider_sid=None, reply_to_id=inbound.id, created_at=old, updated_at=old))
        await uow.commit()


async def _seed(db: Database) -> None:
    """History, and the contact's open conversation with a blocking failure (so the block
    check goes on to read the window as well)."""
    await _history(db, 0)
    async with db.uow() as uow:
        mine = conversation()
        await uow.repository(ConversationRepository).create(mine)
        messages = uow.repository(MessageRepository)
        await messages.create(message(mine.id))
        await messages.create(message(
            mine.id, direction=Direction.OUTBOUND, from_address=CHANNEL, to_address=CONTACT,
            status=DeliveryStatus.FAILED, provider_sid=None, error_code="63024"))
        await uow.commit()


@contextmanager
def recorded(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
               _many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT")):
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def _sqlite_plans(path: str, statements: list[tuple[str, Any]]) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [f"{detail}: {sql}" for sql, params in statements
                for *_, detail in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


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


async def _postgres_plans(url: str, statements: list[tuple[str, Any]]) -> list[str]:
    lines = []
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET enable_seqscan = off")
        for sql, params in statements:
            plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *params))
            lines.extend(f"{read}: {sql}" for read in _reads(plan[0]["Plan"]))
    finally:
        await conn.close()
    return lines


async def plans(db: Database, run: Run) -> list[str]:
    """Runs ``run`` in a unit of work; how the database reads tables for its statements."""
    with recorded(db.engine) as statements:
        async with db.uow() as uow:
            await run(uow)
    assert statements, "nothing was recorded: the check would pass whatever the plans"
    if db.dialect == "sqlite":
        return _sqlite_plans(db.url.removeprefix("sqlite:///"), statements)
    return await _postgres_plans(db.url, statements)


# SQLite: SEARCH uses an index's key, SCAN reads a table (or an index) through.
# PostgreSQL (sequential scans off): a Seq Scan, or an index scan with no condition.
_THROUGH = (*(f"SCAN {table}" for table in TABLES), "Seq Scan", "Full Index Scan")


async def scans(db: Database, run: Run) -> list[str]:
    """The reads of ``run``'s statements that go through a whole table."""
    return [line for line in await plans(db, run) if line.startswith(_THROUGH)]


def _sqlite_steps(path: str, statements: list[tuple[str, Any]]) -> int:
    """SQLite's virtual machine instructions for the statements: a row read is several."""
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    with closing(sqlite3.connect(path)) as conn:
        conn.set_progress_handler(step, 1)
        for sql, params in statements:
            conn.execute(sql, params).fetchall()
    return steps


def _rows_read(node: dict[str, Any]) -> int:
    read = 0
    if node.get("Relation Name") in TABLES:
        per_loop = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
                    + node.get("Rows Removed by Index Recheck", 0))
        read = per_loop * node.get("Actual Loops", 1)
    return read + sum(_rows_read(child) for child in node.get("Plans", []))


async def _postgres_rows(url: str, statements: list[tuple[str, Any]]) -> int:
    """Rows PostgreSQL read from the tables (kept or filtered out) running the statements."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET enable_seqscan = off")
        total = 0
        for sql, params in statements:
            plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *params)
            total += _rows_read(json.loads(plan)[0]["Plan"])
        return total
    finally:
        await conn.close()


async def work_before_and_after_more_history(db: Database, run: Run) -> tuple[int, int]:
    """The work of ``run``'s reads, then the same reads' once the history has doubled."""
    with recorded(db.engine) as statements:
        async with db.uow() as uow:
            await run(uow)
    reads = [(sql, p) for sql, p in statements if sql.lstrip().upper().startswith("SELECT")]
    assert reads, "nothing was read: the check would pass whatever the plans"

    async def work() -> int:
        if db.dialect == "sqlite":
            return _sqlite_steps(db.url.removeprefix("sqlite:///"), reads)
        return await _postgres_rows(db.url, reads)

    before = await work()
    await _history(db, HISTORY_CONTACTS)
    return before, await work()




def _by_body(uow: UnitOfWork) -> Awaitable[object]:
    return uow.repository(MessageRepository).query([Condition("body", "eq", "x")])


async def _reads_of_a_reply(uow: UnitOfWork) -> object:
    conv = await uow.repository(ConversationRepository).get_open(OWNER, CONTACT)
    assert conv is not None
    messages = uow.repository(MessageRepository)
    latest = await messages.latest_for_conversation(conv.id, 20)
    await messages.get_reply_to(latest[0].id)
    return await messages.list_for_conversation(conv.id, limit=10)


def _runs(db: Database) -> dict[str, Run]:
    sweep_at = T0 + timedelta(minutes=5)
    return {
        "the block check before each send": lambda uow: contact_block(uow, CONTACT, CHANNEL),
        "the 24-hour window": lambda uow: window_is_open(
            uow, CONTACT, CHANNEL, T0 - timedelta(hours=24)),
        "the reads of a reply": _reads_of_a_reply,
        "an owner's conversations (the internal API)": lambda _: ListConversations(
            db.uow()).execute(ConversationsQuery(owner_id=OWNER, limit=10)),
        # The sweep's finders open their own units of work.
        "the sweep for replies never sent": lambda _: RepliesNeverSent(db.uow()).find(
            sweep_at, 100),
        "the sweep for replies never generated": lambda _: RepliesNeverGenerated(
            db.uow()).find(sweep_at, 100),
    }


RUNS = ["the block check before each send", "the 24-hour window", "the reads of a reply",
        "an owner's conversations (the internal API)", "the sweep for replies never sent",
        "the sweep for replies never generated"]


async def test_the_check_sees_a_query_no_index_serves(db: Database) -> None:
    assert await scans(db, _by_body)


@pytest.mark.parametrize("name", RUNS)
async def test_no_table_is_read_through(db: Database, name: str) -> None:
    assert await scans(db, _runs(db)[name]) == []


async def test_the_growth_check_sees_a_read_that_grows(db: Database) -> None:
    before, after = await work_before_and_after_more_history(db, _by_body)
    assert after > before


@pytest.mark.parametrize("name", RUNS)
async def test_the_work_does_not_grow_with_the_history(db: Database, name: str) -> None:
    # An index can be used and still read most of the table (a range open at one end,
    # or an index whose first column has two values). The history doubling adds 400
    # rows: a read that grows takes several steps for each; a seek in a deeper B-tree
    # may take one or two more in all.
    before, after = await work_before_and_after_more_history(db, _runs(db)[name])
    assert after <= before + 10
