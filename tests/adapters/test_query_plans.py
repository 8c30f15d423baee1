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
from contextlib import contextmanager
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


async def _seed(db: Database) -> None:
    """Other contacts' closed history, and the contact's open conversation."""
    async with db.uow() as uow:
        conversations = uow.repository(ConversationRepository)
        messages = uow.repository(MessageRepository)
        for i in range(HISTORY_CONTACTS):
            other = f"whatsapp:+551190000{i:04d}"
            conv = conversation(contact=other)
            await conversations.create(conv)
            for _ in range(5):
                inbound = message(conv.id, from_address=other)
                await messages.create(inbound)
                await messages.create(message(
                    conv.id, direction=Direction.OUTBOUND, from_address=CHANNEL,
                    to_address=other, status=DeliveryStatus.DELIVERED, provider_sid=None,
                    reply_to_id=inbound.id))
        mine = conversation()
        await conversations.create(mine)
        await messages.create(message(mine.id))
        # A blocking failure, so the block check goes on to read the window as well.
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


async def plans(db: Database, run: Callable[[UnitOfWork], Awaitable[object]]) -> list[str]:
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


async def scans(db: Database, run: Callable[[UnitOfWork], Awaitable[object]]) -> list[str]:
    """The reads of ``run``'s statements that go through a whole table."""
    return [line for line in await plans(db, run) if line.startswith(_THROUGH)]


async def test_the_check_sees_a_query_no_index_serves(db: Database) -> None:
    async def by_body(uow: UnitOfWork) -> object:
        return await uow.repository(MessageRepository).query([Condition("body", "eq", "x")])

    assert await scans(db, by_body)


async def test_the_block_check_before_each_send(db: Database) -> None:
    assert await scans(db, lambda uow: contact_block(uow, CONTACT, CHANNEL)) == []


async def test_the_24_hour_window(db: Database) -> None:
    since = T0 - timedelta(hours=24)
    assert await scans(db, lambda uow: window_is_open(uow, CONTACT, CHANNEL, since)) == []


async def test_the_reads_of_a_reply(db: Database) -> None:
    async def reads(uow: UnitOfWork) -> object:
        conv = await uow.repository(ConversationRepository).get_open(OWNER, CONTACT)
        assert conv is not None
        messages = uow.repository(MessageRepository)
        latest = await messages.latest_for_conversation(conv.id, 20)
        await messages.get_reply_to(latest[0].id)
        return await messages.list_for_conversation(conv.id, limit=10)

    assert await scans(db, reads) == []


async def test_the_sweep_for_replies_never_sent(db: Database) -> None:
    async def sweep(_uow: UnitOfWork) -> object:
        # The sweep opens its own unit of work.
        return await RepliesNeverSent(db.uow()).find(T0 + timedelta(minutes=5), 100)

    assert await scans(db, sweep) == []


async def test_the_sweep_for_replies_never_generated(db: Database) -> None:
    async def sweep(_uow: UnitOfWork) -> object:
        return await RepliesNeverGenerated(db.uow()).find(T0 + timedelta(minutes=5), 100)

    lines = await plans(db, sweep)
    assert not [line for line in lines if line.startswith(_THROUGH)]
    # Served by an index is not enough: every inbound message ever stored matches an
    # index range open at its start. The range must start at the window.
    [outer] = [line for line in lines if "direction" in line.split(":")[0]]
    assert ("created_at>" in outer if db.dialect == "sqlite" else "created_at >=" in outer)
