"""Intake benchmark: webhook -> stored and queued, closed loop, beside its ceilings.

One server process at a time (``wta serve`` itself, or a reference server from
``intake_servers.py``) on 127.0.0.1; a load generator in its own process(es) posting a
different correctly signed Twilio inbound form on every request (unique MessageSid, 500
contacts) over keep-alive connections, at concurrency 32 and 128. Ratios compare each
``wta serve`` configuration with its minimal durable intake measured in the same run.
Afterwards every MessageSid answered 200 is looked up: stored, and its reply job queued.

Settings (environment): BENCH_INTAKE_SECONDS (measured window per run, default 4),
BENCH_INTAKE_ROUNDS (default 1; medians are printed), BENCH_INTAKE_ONLY (``sqlite`` or
``pg``), BENCH_INTAKE_WORKERS (``wta serve --workers``, default 1), BENCH_LOAD_PROCS (load
generator processes, default 1), BENCH_INTAKE_PROFILE (a directory: ``wta serve`` runs
under py-spy, which writes one collapsed-stack file per run there), BENCH_REDIS_URL
(flushed, default redis://127.0.0.1:6379/15), TEST_POSTGRES_DSN (admin DSN), BENCH_HISTORY
(earlier messages seeded into each ``wta serve`` database, default 50000: bench/history.py).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench import intake_check
from bench.intake_run import Server, run_load

SECONDS = float(os.environ.get("BENCH_INTAKE_SECONDS", "4"))
ROUNDS = int(os.environ.get("BENCH_INTAKE_ROUNDS", "1"))
ONLY = os.environ.get("BENCH_INTAKE_ONLY", "")
WORKERS = int(os.environ.get("BENCH_INTAKE_WORKERS", "1"))
ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
CONCURRENCY = (32, 128)
PG_DB = "wta_bench_intake"

Check = Callable[[list[str]], Awaitable[tuple[int, int]]]
Contender = tuple[str, Server, Check]  # a row's name, its server, its stored+queued check


@dataclass
class Row:
    name: str
    concurrency: int
    rps: float
    p50: float
    p99: float
    errors: int
    other: int
    acked: int
    stored: int
    queued: int
    cpu_ms: float  # server CPU per answered request (warm-up included), ms


async def _reset_pg() -> str:
    import asyncpg

    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {PG_DB}")
    finally:
        await admin.close()
    return ADMIN_DSN.rsplit("/", 1)[0] + f"/{PG_DB}"


async def _flush_redis() -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def _measure(name: str, server: Server, concurrency: int, check: Check) -> Row:
    async with server:
        cpu_before = server.cpu_seconds()
        load = await asyncio.to_thread(run_load, server.port, concurrency, SECONDS,
                                       uuid.uuid4().hex[:12])
        cpu = server.cpu_seconds() - cpu_before
    stored, queued = await check(load.ok_sids)
    ms = sorted(x / 1e6 for x in load.latencies_ns) or [0.0]
    return Row(
        name, concurrency, len(load.latencies_ns) / SECONDS,
        ms[len(ms) // 2], ms[min(len(ms) - 1, int(len(ms) * 0.99))], load.socket_errors,
        sum(n for s, n in load.statuses.items() if s != 200), len(load.ok_sids), stored, queued,
        cpu / max(1, sum(load.statuses.values())) * 1e3,
    )


async def _bare_check(sids: list[str]) -> tuple[int, int]:
    return len(sids), len(sids)  # stores nothing: every 200 counts


def bare_server() -> Contender:
    return "bare FastAPI form endpoint", Server.reference("bare"), _bare_check


def sqlite_servers(tmp: Path, tag: str, name: str, workers: int) -> list[Contender]:
    """The SQLite ceiling and ``wta serve`` on the embedded defaults (migrated, seeded),
    their files named by ``tag``, the server's profile by ``name``."""
    ceiling_db, app_db = tmp / f"ceiling-{tag}.db", tmp / f"app-{tag}.db"
    queue_db = tmp / f"queue-{tag}.db"

    async def ceiling_check(sids: list[str]) -> tuple[int, int]:
        return intake_check.check_sqlite_ceiling(ceiling_db, sids)

    async def app_check(sids: list[str]) -> tuple[int, int]:
        return intake_check.check_embedded(app_db, queue_db, sids)

    env = {"DATABASE_URL": f"sqlite:///{app_db}", "QUEUE_SQLITE_DB_PATH": str(queue_db)}
    return [
        ("bare + validator + SQLite insert", Server.reference("sqlite", str(ceiling_db)),
         ceiling_check),
        ("wta serve, embedded defaults", Server.wta(env, tmp, name, workers), app_check),
    ]


async def pg_servers(tmp: Path, name: str, workers: int) -> list[Contender]:
    """The PostgreSQL + Redis ceiling and ``wta serve`` on postgres + arq, on a fresh
    database and a flushed Redis."""
    dsn = await _reset_pg()
    await _flush_redis()

    async def ceiling_check(sids: list[str]) -> tuple[int, int]:
        return await intake_check.check_pg_ceiling(dsn, REDIS_URL, sids)

    async def app_check(sids: list[str]) -> tuple[int, int]:
        return await intake_check.check_pg_arq(dsn, REDIS_URL, sids)

    env = {"DATABASE_BACKEND": "postgres", "DATABASE_URL": dsn, "QUEUE_BACKEND": "arq",
           "QUEUE_REDIS_URL": REDIS_URL}
    return [
        ("bare + validator + asyncpg INSERT + Redis LPUSH",
         Server.reference("pg", dsn, REDIS_URL), ceiling_check),
        ("wta serve, postgres + arq", Server.wta(env, tmp, name, workers), app_check),
    ]


async def _round(tmp: Path, tag: str) -> list[Row]:
    rows: list[Row] = []
    for concurrency in CONCURRENCY:
        contenders = [bare_server()]
        if ONLY in ("", "sqlite"):
            contenders += sqlite_servers(tmp, tag, f"sqlite-c{concurrency}-{tag}", WORKERS)
        if ONLY in ("", "pg"):
            contenders += await pg_servers(tmp, f"pg-c{concurrency}-{tag}", WORKERS)
        for name, server, check in contenders:
            rows.append(await _measure(name, server, concurrency, check))
    return rows


def _median(rows: list[Row]) -> Row:
    first = rows[0]
    return Row(
        first.name, first.concurrency, statistics.median(r.rps for r in rows),
        statistics.median(r.p50 for r in rows), statistics.median(r.p99 for r in rows),
        sum(r.errors for r in rows), sum(r.other for r in rows), sum(r.acked for r in rows),
        sum(r.stored for r in rows), sum(r.queued for r in rows),
        statistics.median(r.cpu_ms for r in rows),
    )


def _print(rows: list[Row]) -> None:
    ceilings = {(r.name.split(",")[0], r.concurrency): r for r in rows}
    print(f"{'server':<48} {'c':>4} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>8} {'x ceil':>7} "
          f"{'p99 x':>6} {'cpu ms/req':>10} {'cpu x':>6} {'sock err':>8} {'non-200':>7} "
          f"{'200s stored+queued':>19}")
    for r in rows:
        ceiling = None
        if r.name.startswith("wta serve, embedded"):
            ceiling = ceilings.get(("bare + validator + SQLite insert", r.concurrency))
        elif r.name.startswith("wta serve, postgres"):
            ceiling = ceilings.get(
                ("bare + validator + asyncpg INSERT + Redis LPUSH", r.concurrency))
        elif r.name.startswith("bare +"):
            ceiling = ceilings.get(("bare FastAPI form endpoint", r.concurrency))
        ratio = f"{r.rps / ceiling.rps:.2f}x" if ceiling and ceiling.rps else ""
        p99 = f"{r.p99 / ceiling.p99:.2f}x" if ceiling and ceiling.p99 else ""
        # As the req/s ratio: the ceiling's CPU per request over this row's (higher is better).
        cpu = f"{ceiling.cpu_ms / r.cpu_ms:.2f}x" if ceiling and r.cpu_ms else ""
        ok = "ok" if r.stored == r.acked and r.queued == r.acked else "MISSING"
        print(f"{r.name:<48} {r.concurrency:>4} {r.rps:>7.0f} {r.p50:>7.1f} {r.p99:>8.1f} "
              f"{ratio:>7} {p99:>6} {r.cpu_ms:>10.3f} {cpu:>6} {r.errors:>8} {r.other:>7} "
              f"{f'{r.stored}/{r.queued}/{r.acked} {ok}':>19}")


async def main() -> None:
    print(f"{SECONDS:g} s per run, {ROUNDS} round(s), wta serve --workers {WORKERS}; "
          "ratios: req/s and p99 against the row's ceiling (bare for the ceilings); cpu: the "
          "server's CPU time per request, its ratio steady on a busy machine", flush=True)
    with tempfile.TemporaryDirectory(prefix="wta-bench-intake-") as name:
        tmp = Path(name)
        rounds = [await _round(tmp, f"r{n}") for n in range(ROUNDS)]
    merged = [_median([r[i] for r in rounds]) for i in range(len(rounds[0]))]
    _print(merged)
