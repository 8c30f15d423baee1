"""The queries the conversation flow makes for each message are served by an index, on
SQLite and on PostgreSQL: none of them reads the whole ``messages`` table, whose size
grows with everything ever received.

Each test runs the flow's own queries through a backend's repositories (SQLAlchemy on
SQLite and on PostgreSQL, and the raw psycopg2 one), on the schema Alembic builds,
records the SQL they sent and asks the database how it reads the tables for it
(``query_plans.py``).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.psycopg.base import PsycopgRepository
from adapters.psycopg.pool import ConnectionPool
from adapters.psycopg.unit_of_work import PsycopgUnitOfWork
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
from tests.adapters.query_plans import (
    THROUGH,
    Driver,
    Statement,
    is_read,
    plan_lines,
    recorded_psycopg,
    recorded_sqlalchemy,
    work,
)
from tests.contracts.entities import registry_for
from tests.contracts.repositories import CHANNEL, CONTACT, OWNER, T0, conversation, message

# Other contacts' history: enough rows that reading them all is not what an index does.
HISTORY_CONTACTS = 40
OTHER_OWNER = "AC00000000000000000000000000000002"
# A query to check: given the database (a use case that opens its own unit of work uses
# it) and the test's unit of work.
Run = Callable[["Database", UnitOfWork], Awaitable[object]]


@dataclass
class Database:
    url: str
    driver: Driver
    uow: Callable[[], UnitOfWork]
    recorded: Callable[[], AbstractContextManager[list[Statement]]]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plans") / "app.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(params=[
    "sqlite",
    pytest.param("asyncpg", marks=pytest.mark.integration),
    pytest.param("psycopg", marks=pytest.mark.integration),
])
async def db(request: pytest.FixtureRequest, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Database]:
    driver: Driver = request.param
    if driver == "sqlite":
        path = tmp_path / "app.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_database")
        migrate(url)
    database, close = _open(url, driver, monkeypatch)
    try:
        await _seed(database)
        yield database
    finally:
        await close()


def _open(url: str, driver: Driver, monkeypatch: pytest.MonkeyPatch
          ) -> tuple[Database, Callable[[], Awaitable[None]]]:
    """The backend's units of work and statement recorder, and how to close it."""
    if driver == "psycopg":
        pool = ConnectionPool(url, min_size=1, max_size=4, timeout=10)
        psycopg = registry_for("postgres", PsycopgRepository)
        return Database(url, driver, lambda: PsycopgUnitOfWork(pool, psycopg),
                        lambda: recorded_psycopg(monkeypatch)), pool.close
    engine = create_engine_for(url)
    sessions = make_session_factory(engine)
    sqla = registry_for("sqlalchemy", SqlaRepository)
    return Database(url, driver, lambda: SqlaUnitOfWork(sessions, sqla),
                    lambda: recorded_sqlalchemy(engine)), engine.dispose


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


async def _statements(db: Database, run: Run) -> list[Statement]:
    with db.recorded() as statements:
        async with db.uow() as uow:
            await run(db, uow)
    reads = [(sql, params) for sql, params in statements if is_read(sql)]
    assert reads, "nothing was read: the check would pass whatever the plans"
    return reads


async def plans(db: Database, run: Run) -> list[str]:
    """Runs ``run`` in a unit of work; how the database reads tables for its reads."""
    return await plan_lines(db.driver, db.url, await _statements(db, run))


async def scans(db: Database, run: Run) -> list[str]:
    """The reads of ``run``'s statements that go through a whole table."""
    return [line for line in await plans(db, run) if line.startswith(THROUGH)]


async def work_before_and_after_more_history(db: Database, run: Run) -> tuple[int, int]:
    """The work of ``run``'s reads, then the same reads' once the history has doubled."""
    reads = await _statements(db, run)
    before = await work(db.driver, db.url, reads)
    await _history(db, HISTORY_CONTACTS)
    return before, await work(db.driver, db.url, reads)


def _by_body(_db: Database, uow: UnitOfWork) -> Awaitable[object]:
    return uow.repository(MessageRepository).query([Condition("body", "eq", "x")])


async def _reads_of_a_reply(_db: Database, uow: UnitOfWork) -> object:
    conv = await uow.repository(ConversationRepository).get_open(OWNER, CONTACT)
    assert conv is not None
    messages = uow.repository(MessageRepository)
    latest = await messages.latest_for_conversation(conv.id, 20)
    await messages.get_reply_to(latest[0].id)
    return await messages.list_for_conversation(conv.id, limit=10)


_SWEEP_AT = T0 + timedelta(minutes=5)
# The flow's queries, by name.
RUNS: dict[str, Run] = {
    "the block check before each send": lambda _, uow: contact_block(uow, CONTACT, CHANNEL),
    "the 24-hour window": lambda _, uow: window_is_open(
        uow, CONTACT, CHANNEL, T0 - timedelta(hours=24)),
    "the reads of a reply": _reads_of_a_reply,
    "an owner's conversations (the internal API)": lambda db, _: ListConversations(
        db.uow()).execute(ConversationsQuery(owner_id=OWNER, limit=10)),
    "the sweep for replies never sent": lambda db, _: RepliesNeverSent(db.uow()).find(
        _SWEEP_AT, 100),
    "the sweep for replies never generated": lambda db, _: RepliesNeverGenerated(
        db.uow()).find(_SWEEP_AT, 100),
}


async def test_the_check_sees_a_query_no_index_serves(db: Database) -> None:
    assert await scans(db, _by_body)


@pytest.mark.parametrize("name", RUNS)
async def test_no_table_is_read_through(db: Database, name: str) -> None:
    assert await scans(db, RUNS[name]) == []


async def test_the_growth_check_sees_a_read_that_grows(db: Database) -> None:
    before, after = await work_before_and_after_more_history(db, _by_body)
    assert after > before


@pytest.mark.parametrize("name", RUNS)
async def test_the_work_does_not_grow_with_the_history(db: Database, name: str) -> None:
    # An index can be used and still read most of the table (a range open at one end,
    # or an index whose first column has two values). The history doubling adds 400
    # rows: a read that grows takes several steps for each; a seek in a deeper B-tree
    # may take one or two more in all.
    before, after = await work_before_and_after_more_history(db, RUNS[name])
    assert after <= before + 10
