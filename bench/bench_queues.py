"""Queue benchmark: enqueue and processing rates of no-op jobs, beside a raw ceiling.

- arq adapter (ArqJobQueue + the project's arq task wrapper, under arq's Worker) against
  bare arq (``enqueue_job`` and a no-op function, same Worker settings, same Redis).
  Target: 80% or more of bare arq.
- SQLite queue (SqliteJobQueue + WorkerRunner) against the original design rebuilt in
  ``bench/sqlite_baseline.py``. Target: 10 times or more; then two consumers on one file
  must process every job exactly once.

Redis: ``BENCH_REDIS_URL`` (default redis://127.0.0.1:6379/15), flushed before and after.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ARQ_JOBS = 3000
SQLITE_JOBS = 3000
BASELINE_JOBS = 400
CONCURRENCY = 20


async def _rate(n: int, work: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await work()
    return n / (time.perf_counter() - start)


# --- arq --------------------------------------------------------------------------------


async def _noop(ctx: dict[str, Any], **kwargs: Any) -> None:
    return None


async def _arq_worker_run(worker: Any) -> None:
    try:
        await worker.main()
    finally:
        await worker.close()


async def bench_arq(url: str) -> dict[str, float]:
    import redis.asyncio as aioredis
    from arq.connections import ArqRedis, RedisSettings
    from arq.worker import Worker

    from adapters.arq_queue import ArqJobQueue
    from adapters.arq_queue.worker import CTX_KEY, ArqTaskRuntime, worker_options
    from application.job_policy import JobPolicy

    admin = aioredis.Redis.from_url(url)
    common = {"burst": True, "poll_delay": 0.005, "handle_signals": False,
              "max_jobs": CONCURRENCY, "keep_result": 3600}
    try:
        # Bare arq: enqueue_job and a no-op function.
        await admin.flushdb()
        settings = RedisSettings.from_dsn(url)
        bare = ArqRedis(host=settings.host, port=settings.port, db=settings.database)
        bare_enqueue = await _rate(ARQ_JOBS, lambda: _each(
            ARQ_JOBS, lambda i: bare.enqueue_job("noop", i=i)))
        await bare.aclose()
        worker = Worker(functions=[_named(_noop, "noop")], redis_settings=settings, **common)
        bare_process = await _rate(ARQ_JOBS, lambda: _arq_worker_run(worker))

        # The adapter: ArqJobQueue.enqueue, the task wrapper around a no-op Job handler.
        await admin.flushdb()
        queue = ArqJobQueue(url)

        async def handler(job: Any) -> None:
            return None

        ours_enqueue = await _rate(ARQ_JOBS, lambda: _each(
            ARQ_JOBS, lambda i: queue.enqueue("noop", {"i": i}, headers={"correlation_id": "x"})))
        runtime = ArqTaskRuntime({"noop": handler}, queue, JobPolicy(60, 1.0, 60.0))
        options = worker_options(queue, job_timeout=60, concurrency=CONCURRENCY,
                                 shutdown_grace=0)
        options.update(common, ctx={CTX_KEY: runtime})
        ours_process = await _rate(ARQ_JOBS, lambda: _arq_worker_run(Worker(**options)))
        await queue.close()
    finally:
        await admin.flushdb()
        await admin.aclose()
    return {"bare_enqueue": bare_enqueue, "bare_process": bare_process,
            "ours_enqueue": ours_enqueue, "ours_process": ours_process}


def _named(fn: Callable[..., Awaitable[Any]], name: str) -> Any:
    from arq.worker import func

    return func(fn, name=name)


async def _each(n: int, call: Callable[[int], Awaitable[Any]]) -> None:
    for i in range(n):
        await call(i)


# --- SQLite -----------------------------------------------------------------------------


async def bench_sqlite(tmp: Path) -> dict[str, float]:
    from adapters.sqlite_queue import SqliteJobQueue
    from adapters.worker.runner import RunnerConfig, WorkerRunner
    from bench.sqlite_baseline import BaselineSqliteQueue

    baseline = BaselineSqliteQueue(str(tmp / "baseline.db"))
    base_enqueue = await _rate(BASELINE_JOBS, lambda: _each(
        BASELINE_JOBS, lambda i: baseline.enqueue("noop", {"i": i})))

    async def baseline_consume() -> None:
        while (job := await baseline.claim()) is not None:
            await baseline.ack(job[0])

    base_process = await _rate(BASELINE_JOBS, baseline_consume)

    queue = SqliteJobQueue(str(tmp / "queue.db"), poll_interval=0.05)
    ours_enqueue = await _rate(SQLITE_JOBS, lambda: _each(
        SQLITE_JOBS, lambda i: queue.enqueue("noop", {"i": i})))
    config = RunnerConfig(concurrency=CONCURRENCY, receive_wait=0.05)

    async def handler(job: Any) -> None:
        return None

    ours_process = await _rate(SQLITE_JOBS, lambda: WorkerRunner(
        queue, {"noop": handler}, config).run(burst=True))
    await queue.close()
    return {"bare_enqueue": base_enqueue, "bare_process": base_process,
            "ours_enqueue": ours_enqueue, "ours_process": ours_process,
            **await _two_consumers(tmp / "shared.db")}


async def _two_consumers(path: Path) -> dict[str, float]:
    from adapters.sqlite_queue import SqliteJobQueue
    from adapters.worker.runner import RunnerConfig, WorkerRunner

    producer = SqliteJobQueue(str(path))
    expected = {await producer.enqueue("noop", {"i": i}) for i in range(SQLITE_JOBS)}
    seen: list[str] = []

    async def handler(job: Any) -> None:
        seen.append(job.id)

    consumers = [SqliteJobQueue(str(path), poll_interval=0.05) for _ in range(2)]
    config = RunnerConfig(concurrency=CONCURRENCY // 2, receive_wait=0.05)
    runners = [WorkerRunner(c, {"noop": handler}, config) for c in consumers]
    rate = await _rate(SQLITE_JOBS, lambda: asyncio.gather(*(r.run(burst=True) for r in runners)))
    for q in (producer, *consumers):
        await q.close()
    return {"two_process": rate, "lost": float(len(expected - set(seen))),
            "doubled": float(len(seen) - len(set(seen))),
            "split": float(min(r.processed for r in runners))}


# --- report -----------------------------------------------------------------------------


def _report(name: str, baseline: str, r: dict[str, float], target: float) -> bool:
    ok = True
    for kind in ("enqueue", "process"):
        ratio = r[f"ours_{kind}"] / r[f"bare_{kind}"]
        hit = ratio >= target
        ok &= hit
        print(f"{name:>7} {kind:<8} {r[f'ours_{kind}']:>9.0f}/s   {baseline} "
              f"{r[f'bare_{kind}']:>9.0f}/s   ratio {ratio:5.2f}  (target {target:g}) "
              f"{'ok' if hit else 'BELOW TARGET'}")
    return ok


def _best(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: max(r[key] for r in rounds) for key in rounds[0]}


async def run() -> int:
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    ok = True
    print(f"no-op jobs; arq {ARQ_JOBS}, sqlite {SQLITE_JOBS}, sqlite baseline {BASELINE_JOBS}; "
          f"worker concurrency {CONCURRENCY}")
    try:
        # Best of three: the first round also warms Redis and the connection pools.
        arq = _best([await bench_arq(url) for _ in range(3)])
    except OSError as exc:  # redis' ConnectionError is an OSError too
        print(f"    arq skipped: Redis at {url} unreachable ({exc})")
    else:
        ok &= _report("arq", "bare arq", arq, 0.8)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await bench_sqlite(Path(tmp))
    ok &= _report("sqlite", "baseline", sqlite, 10.0)
    clean = sqlite["lost"] == 0 and sqlite["doubled"] == 0
    ok &= clean
    print(f" sqlite two consumers on one file: {sqlite['two_process']:.0f}/s, "
          f"lost {sqlite['lost']:.0f}, doubled {sqlite['doubled']:.0f}, "
          f"smaller share {sqlite['split']:.0f} {'ok' if clean else 'FAILED'}")
    return 0 if ok else 1


def main() -> int:
    return asyncio.run(run())
