"""After a run: is every MessageSid answered 200 stored, and its reply job queued?

Returns (stored, queued) counts among the acknowledged MessageSids; the benchmark
reports a failure when either falls short of the number of 200 answers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from contextlib import closing
from pathlib import Path

ARQ_QUEUE = "wta:queue"  # the arq adapter's default queue name
ARQ_JOB_PREFIX = "arq:job:"


def _sqlite_rows(path: Path, query: str) -> list[tuple[str, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(query).fetchall()


def check_sqlite_ceiling(path: Path, sids: Collection[str]) -> tuple[int, int]:
    stored = {row[0] for row in _sqlite_rows(path, "SELECT sid FROM intake")}
    found = len(stored & set(sids))
    return found, found  # the ceiling has no queue: its row is its job


def check_embedded(app_db: Path, queue_db: Path, sids: Collection[str]) -> tuple[int, int]:
    wanted = set(sids)
    ids = {sid: mid for mid, sid in _sqlite_rows(
        app_db, "SELECT id, provider_sid FROM messages WHERE direction = 'inbound'")
        if sid in wanted}
    keys = {row[0] for row in _sqlite_rows(queue_db, "SELECT dedup_key FROM jobs")}
    queued = sum(1 for mid in ids.values() if f"generate_reply:{mid}" in keys)
    return len(ids), queued


async def check_pg_ceiling(dsn: str, redis_url: str, sids: Collection[str]) -> tuple[int, int]:
    import asyncpg
    import redis.asyncio as aioredis

    from bench.intake_servers import REDIS_LIST

    wanted = set(sids)
    conn = await asyncpg.connect(dsn)
    try:
        stored = {r["sid"] for r in await conn.fetch("SELECT sid FROM bench_intake")}
    finally:
        await conn.close()
    client = aioredis.Redis.from_url(redis_url)
    try:
        listed = {s.decode() for s in await client.lrange(REDIS_LIST, 0, -1)}
    finally:
        await client.aclose()
    return len(stored & wanted), len(listed & wanted)


async def check_pg_arq(dsn: str, redis_url: str, sids: Collection[str]) -> tuple[int, int]:
    import asyncpg
    import redis.asyncio as aioredis

    wanted = set(sids)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id, provider_sid FROM messages WHERE direction = 'inbound'")
    finally:
        await conn.close()
    ids = [r["id"] for r in rows if r["provider_sid"] in wanted]
    client = aioredis.Redis.from_url(redis_url)
    try:
        queued = 0
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            scores = await client.zmscore(ARQ_QUEUE, [f"generate_reply:{i}" for i in chunk])
            queued += sum(1 for s in scores if s is not None)
    finally:
        await client.aclose()
    return len(ids), queued
