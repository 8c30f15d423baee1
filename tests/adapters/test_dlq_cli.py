"""``wta dlq list | replay ID | purge`` on the SQLite queue and on arq, through the CLI's main."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from adapters.arq_queue import ArqJobQueue
from adapters.sqlite_queue import SqliteJobQueue
from application.ports.job_queue import Job
from bootstrap.cli import main


async def _kill_sqlite_job(queue: SqliteJobQueue, n: int) -> str:
    await queue.enqueue("send_message", {"message_id": f"m-{n}"}, dedup_key=f"send:{n}")
    [job] = await queue.receive(1, 0)
    await queue.dead_letter(job, f"provider said no to m-{n}")
    return job.id


async def _kill_arq_job(queue: ArqJobQueue, n: int) -> str:
    job = Job(id=f"send:{n}", task="send_message", payload={"message_id": f"m-{n}"},
              attempt=5, max_attempts=5, enqueued_at=datetime.now(UTC), dedup_key=f"send:{n}")
    await queue.add_dead_letter(job, f"provider said no to m-{n}")
    return job.id


@pytest.fixture(params=["sqlite", "arq"])
def backend(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    monkeypatch.chdir(tmp_path)  # no developer .env is read
    monkeypatch.setenv("DATABASE_BACKEND", "memory")
    if request.param == "sqlite":
        path = str(tmp_path / "queue.db")
        monkeypatch.setenv("QUEUE_BACKEND", "sqlite")
        monkeypatch.setenv("QUEUE_SQLITE_DB_PATH", path)
        yield (lambda: SqliteJobQueue(path)), _kill_sqlite_job
        return
    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    monkeypatch.setenv("QUEUE_BACKEND", "arq")
    monkeypatch.setenv("QUEUE_REDIS_URL", url)
    yield (lambda: ArqJobQueue(url)), _kill_arq_job
    redis.Redis.from_url(url).flushdb()


def _on_queue(make: Any, action: Any) -> Any:
    async def run() -> Any:
        queue = make()
        try:
            return await action(queue)
        finally:
            await queue.close()

    return asyncio.run(run())


def test_dlq_list_replay_and_purge(backend: tuple[Any, Any],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    make, kill = backend
    first = _on_queue(make, lambda q: kill(q, 1))
    _on_queue(make, lambda q: kill(q, 2))

    assert main(["dlq", "list"]) == 0
    out = capsys.readouterr().out
    assert first in out and "send_message" in out and "provider said no to m-1" in out
    assert "2 of 2 dead letter(s)" in out
    assert main(["dlq", "list", "--limit", "1"]) == 0
    assert "1 of 2 dead letter(s)" in capsys.readouterr().out

    assert main(["dlq", "replay", first]) == 0
    assert f"replayed {first}" in capsys.readouterr().out
    assert _on_queue(make, lambda q: q.depth()) == 1
    assert main(["dlq", "replay", first]) == 1
    assert f"no dead letter {first}" in capsys.readouterr().out
    assert main(["dlq", "replay"]) == 2

    assert main(["dlq", "purge"]) == 0
    assert "purged 1 dead letter(s)" in capsys.readouterr().out
    assert main(["dlq", "list"]) == 0
    assert "0 of 0 dead letter(s)" in capsys.readouterr().out
