"""Reusable statements on loop sessions run as compiled SQL, with SQLAlchemy's meaning.

Each case runs the same statement twice, once marked reusable (the prepared path) and
once not (SQLAlchemy's own execution), and requires the same rows, types, counts and
errors; then that the prepared path was taken, and that it steps aside when it must.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    event,
    exc,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.sql import Executable

from adapters.sqlalchemy.loop_sqlite import LoopSession, LoopSessionFactory
from adapters.sqlalchemy.prepared import Prepared, reusable
from adapters.sqlalchemy.schema import UtcDateTime
from tests.adapters.loop_sessions import loop_sessions

metadata = MetaData()
things = Table(
    "things", metadata,
    Column("id", String(20), primary_key=True),
    Column("body", Text, nullable=False),
    Column("count", Integer),
    Column("ratio", Float),
    Column("flag", Boolean),
    Column("at", UtcDateTime),
    Column("extra", JSON),
)
AT = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
ROW = {"id": "a", "body": "hello", "count": 3, "ratio": 0.5, "flag": True, "at": AT,
       "extra": {"k": [1, "two", None]}}


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[LoopSessionFactory]:
    async with loop_sessions(tmp_path / "things.db", metadata) as factory:
        yield factory


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every statement that took the prepared path."""
    runs: list[str] = []
    run = Prepared.run

    def counting(self: Prepared, dbapi: Any, params: Any) -> Any:
        runs.append(self.sql)
        return run(self, dbapi, params)

    monkeypatch.setattr(Prepared, "run", counting)
    return runs


async def both(sessions: LoopSessionFactory, build: Callable[[], Executable],
               params: dict[str, Any] | None = None, *, seed: bool = True) -> list[Any]:
    """(prepared outcome, SQLAlchemy outcome): rows as dicts, or the row count."""
    outcomes = []
    for stmt in (reusable(build()), build()):
        session: LoopSession = sessions()
        try:
            if seed:
                await session.execute(insert(things), ROW)
            result = await session.execute(stmt, params)
            rows: Any = result
            outcomes.append([dict(r) for r in result.mappings().all()] if rows.returns_rows
                            else rows.rowcount)
        finally:
            await session.rollback()
            await session.close()
    return outcomes


async def test_rows_come_back_with_their_types(sessions: LoopSessionFactory,
                                               counted: list[str]) -> None:
    prepared, plain = await both(sessions, lambda: select(things).where(
        things.c.id == bindparam("p_id")), {"p_id": "a"})
    assert prepared == plain == [ROW]
    assert prepared[0]["at"].tzinfo is UTC  # made aware again, as the plain path does
    assert isinstance(prepared[0]["flag"], bool)
    assert len(counted) == 1


async def test_fixed_values_and_labels_are_kept(sessions: LoopSessionFactory,
                                                counted: list[str]) -> None:
    # "body = 'hello'" is a bound value of the statement, not a parameter of the call.
    prepared, plain = await both(sessions, lambda: select(
        func.count().label("n"), func.max(things.c.at).label("latest")).where(
        things.c.body == "hello", things.c.at >= bindparam("p_since", type_=UtcDateTime)),
        {"p_since": AT})
    assert prepared == plain == [{"n": 1, "latest": AT}]
    assert counted


async def test_writes_count_rows_and_return_columns(sessions: LoopSessionFactory,
                                                    counted: list[str]) -> None:
    changed = await both(sessions, lambda: update(things).where(
        things.c.id == bindparam("p_id")).values(count=things.c.count + 1,
                                                 at=bindparam("v_at")),
        {"p_id": "a", "v_at": AT})
    assert changed == [1, 1]
    missed = await both(sessions, lambda: update(things).where(
        things.c.id == bindparam("p_id")).values(count=0), {"p_id": "zzz"})
    assert missed == [0, 0]
    returned = await both(sessions, lambda: insert(things).returning(things.c.id, things.c.at),
                          {**ROW, "id": "b"})
    assert returned == [[{"id": "b", "at": AT}]] * 2
    assert len(counted) == 3


async def test_an_insert_takes_its_columns_from_the_parameters(
        sessions: LoopSessionFactory) -> None:
    stmt = reusable(insert(things))
    session = sessions()
    try:
        await session.execute(stmt, {"id": "x", "body": "only two columns"})
        await session.execute(stmt, ROW)
        rows = (await session.execute(select(things).order_by(things.c.id))).mappings().all()
    finally:
        await session.close()
    assert [dict(r) for r in rows] == [
        ROW, {"id": "x", "body": "only two columns", "count": None, "ratio": None,
              "flag": None, "at": None, "extra": None}]


async def test_errors_are_sqlalchemys(sessions: LoopSessionFactory,
                                      counted: list[str]) -> None:
    for stmt in (reusable(insert(things)), insert(things)):
        session = sessions()
        try:
            await session.execute(stmt, ROW)
            with pytest.raises(exc.IntegrityError) as raised:
                await session.execute(stmt, ROW)  # the same primary key again
            orig: Any = raised.value.orig
            assert orig.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY"
        finally:
            await session.rollback()
            await session.close()
    lookup = select(things).where(things.c.id == bindparam("p_id"))
    for query in (reusable(lookup), lookup):
        session = sessions()
        try:
            with pytest.raises(exc.SQLAlchemyError, match="value is required"):
                await session.execute(query, {})
        finally:
            await session.close()
    assert counted  # the prepared path raised them


async def test_it_steps_aside_for_listeners_expanding_lists_and_text(
        sessions: LoopSessionFactory, counted: list[str]) -> None:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    lookup = reusable(select(things.c.id).where(things.c.id == bindparam("p_id")))
    event.listen(sessions.engine, "before_cursor_execute", record)
    try:
        assert await both(sessions, lambda: lookup, {"p_id": "a"}) == [[{"id": "a"}]] * 2
    finally:
        event.remove(sessions.engine, "before_cursor_execute", record)
    assert any("FROM things" in s for s in seen) and not counted

    expanding = await both(sessions, lambda: select(things.c.id).where(
        things.c.id.in_(bindparam("p_ids", expanding=True))), {"p_ids": ["a", "b"]})
    assert expanding == [[{"id": "a"}]] * 2 and not counted
    textual = await both(sessions, lambda: text("SELECT id FROM things"))
    assert textual == [[{"id": "a"}]] * 2 and not counted
