"""Repository throughput on PostgreSQL: each backend beside bare psycopg2, in one run.

Inserts are one unit of work (one transaction) per row, the webhook's shape; reads are
one unit per primary-key lookup. The baselines do the same with nothing in between:
``INSERT ... RETURNING id`` + COMMIT per row, and ``SELECT ... WHERE id = %s``.
Numbers are printed as rows/s and as a ratio to the bare baseline.

Needs PostgreSQL on 127.0.0.1:5432 (``TEST_POSTGRES_DSN`` overrides); creates and drops
its own database. ``BENCH_ROWS`` sets the rows per measurement (default 1000), ``BENCH_ROUNDS`` the
rounds (default 3).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
from alembic import command
from alembic.config import Config
from psycopg2 import sql
from psycopg2.extras import Json

from adapters.psycopg.pool import ConnectionPool
from adapters.psycopg.unit_of_work import PsycopgUnitOfWork
from adapters.sqlalchemy.engine import create_engine_for, make_session_factory, sync_url
from adapters.sqlalchemy.unit_of_work import SqlaUnitOfWork
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from domain.conversation import Conversation, ConversationStatus
from domain.ids import new_ulid
from domain.message import DeliveryStatus, Direction, Message, MessageType

ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
ROWS = int(os.environ.get("BENCH_ROWS", "1000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ROOT = Path(__file__).resolve().parents[1]
NOW = datetime.now(UTC)
COLUMNS = ("id", "conversation_id", "owner_id", "direction", "type", "body", "from_address",
           "to_address", "status", "provider_sid", "reply_to_id", "error_code", "metadata",
           "created_at", "updated_at", "version")


@contextmanager
def scratch_database() -> Iterator[str]:
    name = f"wta_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(ADMIN_DSN)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
        config = Config(str(ROOT / "alembic.ini"))
        config.set_main_option("sqlalchemy.url", sync_url(dsn).replace("%", "%%"))
        config.attributes["configure_logger"] = False
        command.upgrade(config, "head")
        yield dsn
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
        admin.close()


def conversation() -> Conversation:
    return Conversation(id=new_ulid(), owner_id="AC-bench", contact="whatsapp:+5511999990000",
                        channel="whatsapp:+14155238886", status=ConversationStatus.OPEN,
                        created_at=NOW, updated_at=NOW, last_message_at=NOW)


def message(conversation_id: str) -> Message:
    return Message(id=new_ulid(), conversation_id=conversation_id, owner_id="AC-bench",
                   direction=Direction.INBOUND, type=MessageType.TEXT, body="olá 👋 bench",
                   from_address="whatsapp:+5511999990000", to_address="whatsapp:+14155238886",
                   status=DeliveryStatus.RECEIVED, created_at=NOW, updated_at=NOW,
                   provider_sid=f"SM{uuid.uuid4().hex}", metadata={"twilio": {"NumMedia": "0"}})


def row(m: Message) -> tuple[object, ...]:
    return (m.id, m.conversation_id, m.owner_id, m.direction.value, m.type.value, m.body,
            m.from_address, m.to_address, m.status.value, m.provider_sid, m.reply_to_id,
            m.error_code, Json(m.metadata), m.created_at, m.updated_at, m.version)


def rate(count: int, started: float) -> float:
    return count / (time.perf_counter() - started)


def bare(dsn: str, conversation_id: str) -> tuple[float, float, list[str]]:
    conn = psycopg2.connect(dsn)
    insert = sql.SQL("INSERT INTO messages ({}) VALUES ({}) RETURNING id").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
        sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS))).as_string(conn)
    select = sql.SQL("SELECT {} FROM messages WHERE id = %s").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS))).as_string(conn)
    rows = [row(message(conversation_id)) for _ in range(ROWS)]
    ids: list[str] = []
    with conn.cursor() as cur:
        started = time.perf_counter()
        for values in rows:
            cur.execute(insert, values)
            ids.append(cur.fetchone()[0])
            conn.commit()
        inserts = rate(ROWS, started)
    conn.autocommit = True
    with conn.cursor() as cur:
        started = time.perf_counter()
        for message_id in ids:
            cur.execute(select, (message_id,))
            cur.fetchone()
        reads = rate(ROWS, started)
    conn.close()
    return inserts, reads, ids


async def through_port(make_uow: Callable[[], UnitOfWork], conversation_id: str,
                       warm_up: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    await warm_up()
    messages = [message(conversation_id) for _ in range(ROWS)]
    started = time.perf_counter()
    for m in messages:
        async with make_uow() as uow:
            await uow.repository(MessageRepository).create(m)
            await uow.commit()
    inserts = rate(ROWS, started)
    started = time.perf_counter()
    for m in messages:
        async with make_uow() as uow:
            await uow.repository(MessageRepository).get_by_id(m.id)
    return inserts, rate(ROWS, started)


async def psycopg_backend(dsn: str, conversation_id: str) -> tuple[float, float]:
    pool = ConnectionPool(dsn, max_size=4)
    try:
        async def warm_up() -> None:
            async with PsycopgUnitOfWork(pool) as uow:
                await uow.repository(MessageRepository).count()

        return await through_port(lambda: PsycopgUnitOfWork(pool), conversation_id, warm_up)
    finally:
        await pool.close()


async def sqlalchemy_backend(dsn: str, conversation_id: str) -> tuple[float, float]:
    engine = create_engine_for(dsn, pool_size=4)
    sessions = make_session_factory(engine)
    try:
        async def warm_up() -> None:
            async with SqlaUnitOfWork(sessions) as uow:
                await uow.repository(MessageRepository).count()

        return await through_port(lambda: SqlaUnitOfWork(sessions), conversation_id, warm_up)
    finally:
        await engine.dispose()


async def supabase_backend(dsn: str, conversation_id: str) -> tuple[float, float]:
    # The official client over HTTP to the tests' PostgREST double: this measures the
    # adapter and client overhead plus a local HTTP hop, not a hosted Supabase project.
    from adapters.supabase import SupabaseConnection, SupabaseUnitOfWork
    from tests.fakes.postgrest import PostgrestDouble

    double = PostgrestDouble(keys=("bench-key",)).start()
    double.use_database(dsn)
    connection = SupabaseConnection(double.base_url, "bench-key")
    try:
        async def warm_up() -> None:
            async with SupabaseUnitOfWork(connection) as uow:
                await uow.repository(MessageRepository).count()

        return await through_port(lambda: SupabaseUnitOfWork(connection), conversation_id,
                                  warm_up)
    finally:
        await connection.aclose()
        double.stop()


async def run(dsn: str) -> None:
    conv = conversation()
    async with PsycopgUnitOfWork(pool := ConnectionPool(dsn)) as uow:
        await uow.repository(ConversationRepository).create(conv)
        await uow.commit()
    await pool.close()
    # Rounds interleave the backends so a burst of load elsewhere on the machine hits all
    # of them alike; each keeps its best round.
    results: dict[str, tuple[float, float]] = {}

    def keep(name: str, measured: tuple[float, float]) -> None:
        best = results.get(name, (0.0, 0.0))
        results[name] = (max(best[0], measured[0]), max(best[1], measured[1]))

    for _ in range(ROUNDS):
        inserts, reads, _ids = await asyncio.to_thread(bare, dsn, conv.id)
        keep("bare psycopg2", (inserts, reads))
        keep("postgres (raw adapter)", await psycopg_backend(dsn, conv.id))
        keep("sqlalchemy (asyncpg)", await sqlalchemy_backend(dsn, conv.id))
        keep("supabase (PostgREST double)", await supabase_backend(dsn, conv.id))
    base_inserts, base_reads = results["bare psycopg2"]
    print(f"{ROWS} rows per measurement, best of {ROUNDS} interleaved rounds; "
          "one transaction per insert, one lookup per read")
    print(f"{'backend':<30}{'inserts/s':>11}{'ratio':>8}{'reads/s':>11}{'ratio':>8}")
    for name, (inserts, reads) in results.items():
        print(f"{name:<30}{inserts:>11.0f}{inserts / base_inserts:>8.0%}"
              f"{reads:>11.0f}{reads / base_reads:>8.0%}")


def main() -> None:
    with scratch_database() as dsn:
        asyncio.run(run(dsn))
