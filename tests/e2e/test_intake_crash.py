"""kill -9 of the API under load: every MessageSid answered 200 is stored, queued, and
gets exactly one reply once a worker runs; on the embedded defaults with several API
processes writing one SQLite file, and on postgres + arq."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from bootstrap.settings import Settings
from bootstrap.simulate import inbound_params, sign
from tests.conftest import free_port
from tests.e2e.test_end_to_end import WTA, Processes, base_env, wait_ready

pytestmark = pytest.mark.e2e

CONCURRENCY = 24
SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]  # the development owner


async def _post_until_killed(url: str, acked: list[str], kill_after: int,
                             kill: Callable[[], None]) -> int:
    """Posts distinct signed webhooks on CONCURRENCY connections; kills the server once
    ``kill_after`` were answered 200 and goes on until every connection failed."""
    failures = 0
    counter = iter(range(10**9))

    async def connection(client: httpx.AsyncClient) -> None:
        nonlocal failures
        while True:
            n = next(counter)
            sid = f"SM{os.getpid():08d}{n:024d}"
            contact = f"whatsapp:+5511{900000000 + n % 50}"
            params = inbound_params(SETTINGS, f"message {n}", contact, sid)
            headers = {"X-Twilio-Signature": sign(SETTINGS, url, params)}
            try:
                response = await client.post(url, data=params, headers=headers)
            except httpx.HTTPError:
                failures += 1
                return
            if response.status_code == 200:
                acked.append(sid)
                if len(acked) == kill_after:
                    kill()

    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.gather(*(connection(client) for _ in range(CONCURRENCY)))
    return failures


def _start_api(procs: Processes, tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    # Its own process group, so one kill -9 takes uvicorn's supervisor and its workers.
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        return subprocess.Popen([*WTA, "serve", *args], env=procs.env, cwd=procs.logs,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _crash_under_load(procs: Processes, tmp_path: Path, port: int, *args: str) -> list[str]:
    api = _start_api(procs, tmp_path, *args)
    try:
        wait_ready(f"http://127.0.0.1:{port}", procs)
        acked: list[str] = []

        def kill() -> None:
            os.killpg(api.pid, signal.SIGKILL)

        url = f"http://127.0.0.1:{port}/channels/twilio/v1/webhooks/inbound"
        failures = asyncio.run(_post_until_killed(url, acked, 300, kill))
        assert failures == CONCURRENCY  # every connection ended by the kill
        assert api.wait(10) == -signal.SIGKILL
        return acked
    finally:
        if api.poll() is None:
            os.killpg(api.pid, signal.SIGKILL)
            api.wait()


def _wait_for(check: Callable[[], bool], procs: Processes, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"replies never all arrived\n{procs.output()}")


def test_kill_9_mid_load_embedded_defaults_with_two_api_processes(tmp_path: Path) -> None:
    port = free_port()
    procs = Processes(base_env(tmp_path, port), tmp_path)
    assert procs.run("migrate").returncode == 0
    acked = _crash_under_load(procs, tmp_path, port, "--workers", "2")
    assert len(acked) >= 300

    def rows(db: str, query: str) -> list[tuple[str, ...]]:
        with closing(sqlite3.connect(tmp_path / db)) as conn:
            return conn.execute(query).fetchall()

    stored = dict(rows("app.db", "SELECT provider_sid, id FROM messages "
                                 "WHERE direction = 'inbound'"))
    assert set(acked) <= set(stored)
    jobs = {key for (key,) in rows("queue.db", "SELECT dedup_key FROM jobs")}
    assert {f"generate_reply:{stored[sid]}" for sid in acked} <= jobs

    procs.start("worker", "worker")
    try:
        wanted = {stored[sid] for sid in acked}

        def all_replied() -> bool:
            replied = rows("app.db", "SELECT reply_to_id FROM messages "
                                     "WHERE direction = 'outbound'")
            return wanted <= {r for (r,) in replied}

        _wait_for(all_replied, procs)
        doubled = rows("app.db", "SELECT reply_to_id FROM messages WHERE direction = "
                                 "'outbound' GROUP BY reply_to_id HAVING count(*) > 1")
        assert doubled == []
    finally:
        procs.stop_all()


def test_kill_9_mid_load_postgres_and_arq(
    tmp_path: Path, postgres_database: str, redis_url: str
) -> None:
    import psycopg2
    import redis

    admin = redis.Redis.from_url(redis_url)
    admin.flushdb()
    port = free_port()
    env = base_env(tmp_path, port) | {
        "DATABASE_BACKEND": "postgres", "DATABASE_URL": postgres_database,
        "QUEUE_BACKEND": "arq", "QUEUE_REDIS_URL": redis_url,
    }
    procs = Processes(env, tmp_path)
    migrated = procs.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    acked = _crash_under_load(procs, tmp_path, port)

    def rows(query: str) -> list[tuple[str, ...]]:
        with closing(psycopg2.connect(postgres_database)) as conn, conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall()

    try:
        stored = dict(rows("SELECT provider_sid, id FROM messages "
                           "WHERE direction = 'inbound'"))
        assert set(acked) <= set(stored)
        keys = [f"generate_reply:{stored[sid]}" for sid in acked]
        assert None not in admin.zmscore("wta:queue", keys)

        procs.start("worker", "worker")
        wanted = {stored[sid] for sid in acked}

        def all_replied() -> bool:
            replied = rows("SELECT reply_to_id FROM messages WHERE direction = 'outbound'")
            return wanted <= {r for (r,) in replied}

        _wait_for(all_replied, procs)
        assert rows("SELECT reply_to_id FROM messages WHERE direction = 'outbound' "
                    "GROUP BY reply_to_id HAVING count(*) > 1") == []
    finally:
        procs.stop_all()
        admin.flushdb()
        admin.close()
