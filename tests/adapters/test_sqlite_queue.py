"""SqliteJobQueue: the shared contract, then what only a file shared by processes can show."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.sqlite_queue import SqliteJobQueue
from application.errors import QueueUnavailable
from tests.adapters.sqlite_locks import write_lock_held
from tests.contracts.job_queue import JobQueueContract
from tests.contracts.worker import MAX_ATTEMPTS, RunnerHarness, WorkerContract

ROOT = Path(__file__).resolve().parents[2]

# Run by child processes: `claim` takes one job and hangs until killed; `consume` waits for
# a line on stdin, then receives and acks until the queue is empty, printing each job id.
WORKER = """
import asyncio, sys
from adapters.sqlite_queue import SqliteJobQueue

async def main(path, mode):
    queue = SqliteJobQueue(path, visibility_timeout=float(sys.argv[3]), poll_interval=0.05)
    if mode == "claim":
        [job] = await queue.receive(1, wait_seconds=30)
        print("claimed", job.id, job.attempt, flush=True)
        await asyncio.sleep(3600)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    while True:
        jobs = await queue.receive(2, wait_seconds=0.2)
        for job in jobs:
            print(job.id)
            await queue.ack(job)
        if not jobs and await queue.depth() == 0:
            break
    await queue.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def start_worker(path: Path, mode: str, visibility_timeout: float) -> Any:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, str(path), mode, str(visibility_timeout),
        cwd=ROOT, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_line(proc: Any) -> str:
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
    if not line:
        stderr = await proc.stderr.read()
        pytest.fail(f"worker exited early: {stderr.decode()}")
    return line.decode().strip()


@pytest.fixture
async def open_queue(tmp_path: Path) -> AsyncIterator[Callable[..., SqliteJobQueue]]:
    made: list[SqliteJobQueue] = []

    def make(path: Path | None = None, **options: Any) -> SqliteJobQueue:
        queue = SqliteJobQueue(str(path or tmp_path / "var" / "queue.db"), **options)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        await queue.close()


class TestSqliteJobQueue(JobQueueContract):
    @pytest.fixture
    def make_queue(
        self, open_queue: Callable[..., SqliteJobQueue], tmp_path: Path
    ) -> Callable[..., SqliteJobQueue]:
        counter = iter(range(1000))
        return lambda **options: open_queue(tmp_path / f"q{next(counter)}.db", **options)


async def test_worker_killed_before_ack_gets_its_job_redelivered(
    open_queue: Callable[..., SqliteJobQueue], tmp_path: Path
) -> None:
    path = tmp_path / "queue.db"
    queue = open_queue(path, visibility_timeout=1.0, poll_interval=0.1)
    job_id = await queue.enqueue("t", {"message_id": "m-1"})
    worker = await start_worker(path, "claim", visibility_timeout=1.0)
    try:
        assert await read_line(worker) == f"claimed {job_id} 1"
    finally:
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
    assert worker.returncode == -signal.SIGKILL
    [job] = await queue.receive(1, wait_seconds=15)
    assert job.id == job_id
    assert job.attempt == 2
    assert job.payload == {"message_id": "m-1"}
    await queue.ack(job)
    assert await queue.depth() == 0


async def test_two_processes_consume_every_job_exactly_once(
    open_queue: Callable[..., SqliteJobQueue], tmp_path: Path
) -> None:
    path = tmp_path / "queue.db"
    queue = open_queue(path)
    expected = {await queue.enqueue("t", {"n": n}) for n in range(200)}
    workers = [await start_worker(path, "consume", visibility_timeout=60) for _ in range(2)]
    for worker in workers:
        assert await read_line(worker) == "ready"
    for worker in workers:  # released together so they really contend for the file
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()
    results = await asyncio.wait_for(
        asyncio.gather(*(w.communicate() for w in workers)), timeout=60
    )
    seen: list[str] = []
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err.decode()
        assert err == b"", err.decode()  # no traceback, no SQLITE_BUSY, no lost lease
        seen += out.decode().split()
    assert len(seen) == 200, "a job was processed twice or lost"
    assert set(seen) == expected
    assert await queue.depth() == 0


async def test_jobs_and_dead_letters_survive_reopening(
    open_queue: Callable[..., SqliteJobQueue], tmp_path: Path
) -> None:
    path = tmp_path / "queue.db"
    first = open_queue(path)
    await first.enqueue("doomed", {"n": 1})
    [doomed] = await first.receive(1, 0)
    await first.dead_letter(doomed, "fatal")
    job_id = await first.enqueue("t", {"text": "durable ✓"}, dedup_key="d:1")
    await first.close()

    second = open_queue(path)
    assert await second.depth() == 1
    assert await second.enqueue("t", {}, dedup_key="d:1") is None
    [dead] = await second.list_dead()
    assert (dead.task, dead.payload, dead.last_error) == ("doomed", {"n": 1}, "fatal")
    [job] = await second.receive(1, 0)
    assert (job.id, job.payload, job.attempt) == (job_id, {"text": "durable ✓"}, 1)


async def test_reopened_queue_delivers_a_waiting_job(
    open_queue: Callable[..., SqliteJobQueue], tmp_path: Path
) -> None:
    path = tmp_path / "queue.db"
    first = open_queue(path)
    job_id = await first.enqueue("t", {"text": "durable ✓"}, headers={"h": "1"})
    await first.close()
    [job] = await open_queue(path).receive(1, 0)
    assert (job.id, job.payload, dict(job.headers)) == (job_id, {"text": "durable ✓"}, {"h": "1"})


async def test_two_queues_on_one_file_never_share_a_job(
    open_queue: Callable[..., SqliteJobQueue], tmp_path: Path
) -> None:
    path = tmp_path / "queue.db"
    a, b = open_queue(path), open_queue(path)
    for n in range(20):
        await a.enqueue("t", {"n": n})
    batches = await asyncio.gather(*(q.receive(3, 0) for q in (a, b) for _ in range(4)))
    ids = [job.id for batch in batches for job in batch]
    assert len(ids) == 20 and len(set(ids)) == 20


async def test_nothing_is_created_before_first_use(tmp_path: Path) -> None:
    path = tmp_path / "not-yet" / "queue.db"
    queue = SqliteJobQueue(str(path))
    assert not path.parent.exists()
    await queue.ping()
    assert path.exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    await queue.close()


def _directory(tmp_path: Path) -> Path:
    return tmp_path


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "plain-file").write_text("x")
    return tmp_path / "plain-file" / "queue.db"


def _not_a_database(tmp_path: Path) -> Path:
    (tmp_path / "junk.db").write_bytes(b"this is not a sqlite database" * 100)
    return tmp_path / "junk.db"


@pytest.mark.parametrize("bad_path", [_directory, _under_a_file, _not_a_database])
async def test_unusable_path_raises_queue_unavailable(
    tmp_path: Path, bad_path: Callable[[Path], Path]
) -> None:
    queue = SqliteJobQueue(str(bad_path(tmp_path)))
    with pytest.raises(QueueUnavailable, match="SQLite queue"):
        await queue.ping()
    with pytest.raises(QueueUnavailable):
        await queue.enqueue("t", {})
    with pytest.raises(QueueUnavailable):
        await queue.receive(1, 0)
    await queue.close()


async def test_cancelled_receive_gives_back_what_it_claimed(
    open_queue: Callable[..., SqliteJobQueue],
) -> None:
    queue = open_queue(visibility_timeout=60)
    await queue.ping()
    await queue.enqueue("t", {"n": 1})
    # Another connection holds the write lock: the claim cannot take the loop's fast path
    # and waits on the queue thread, where the cancellation lands mid-claim.
    with write_lock_held(queue.path):
        receiving = asyncio.create_task(queue.receive(1, wait_seconds=10))
        await asyncio.sleep(0.05)
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
    # Not stranded for the 60 s lease: it is back at once, as a first delivery.
    [job] = await queue.receive(1, wait_seconds=5)
    assert job.attempt == 1


async def test_done_job_frees_its_dedup_key_after_retention(
    open_queue: Callable[..., SqliteJobQueue],
) -> None:
    queue = open_queue(done_retention_seconds=0.5)
    await queue.enqueue("t", {}, dedup_key="k")
    [job] = await queue.receive(1, 0)
    await queue.ack(job)
    assert await queue.enqueue("t", {}, dedup_key="k") is None
    await asyncio.sleep(0.6)  # lets the retention window pass
    assert await queue.enqueue("t", {}, dedup_key="k") is not None
    assert await queue.depth() == 1


async def test_close_wakes_a_waiting_receive(
    open_queue: Callable[..., SqliteJobQueue],
) -> None:
    queue = open_queue(poll_interval=30)
    waiting = asyncio.create_task(queue.receive(1, wait_seconds=20))
    await asyncio.sleep(0.05)
    await queue.close()
    with pytest.raises(QueueUnavailable):
        await asyncio.wait_for(waiting, timeout=5)


class TestSqliteWorker(WorkerContract):
    @pytest.fixture
    def harness(self, open_queue: Callable[..., SqliteJobQueue]) -> RunnerHarness:
        return RunnerHarness(open_queue(max_attempts=MAX_ATTEMPTS, poll_interval=0.05))


async def test_a_held_lock_makes_enqueue_wait_off_the_loop_not_fail(
    open_queue: Callable[..., SqliteJobQueue],
) -> None:
    queue = open_queue()
    await queue.ping()
    with write_lock_held(queue.path):
        enqueuing = asyncio.create_task(queue.enqueue("t", {"n": 1}))
        await asyncio.sleep(0.1)  # the loop keeps running while the enqueue waits for it
        assert not enqueuing.done()
    assert await enqueuing is not None
    assert await queue.depth() == 1


async def test_finished_jobs_are_purged_a_batch_per_claim(
    open_queue: Callable[..., SqliteJobQueue],
) -> None:
    # A claim runs on the event loop: deleting a busy hour's finished jobs in one
    # statement stalled it, so each claim deletes one batch until none is left.
    queue = open_queue(done_retention_seconds=1.0, housekeeping_interval=1.0, purge_batch=2)
    for i in range(5):
        await queue.enqueue("t", {"i": i})
    for job in await queue.receive(5, 0):  # housekeeping ran here: nothing to purge yet
        await queue.ack(job)
    await queue.enqueue("t", {"i": "kept"})
    [kept] = await queue.receive(1, 0)
    await asyncio.sleep(1.1)  # the five are past their retention, and housekeeping is due
    await queue.ack(kept)  # this one is not past its retention

    def finished() -> int:
        with contextlib.closing(sqlite3.connect(queue.path)) as conn:
            return int(conn.execute("SELECT count(*) FROM jobs WHERE state = 'done'")
                       .fetchone()[0])

    remaining = []
    for _ in range(4):
        assert await queue.receive(1, 0) == []
        remaining.append(finished())
    assert remaining == [4, 2, 1, 1]
