"""Intake cost as instructions per request, counted by valgrind: repeatable on a drifting machine.

The intake and delivery benchmarks time real load, and on a shared machine their CPU
figures move by 30-40% between runs of the same code, so a change worth 2-5% per message
cannot be seen in them. Here each server of ``bench_intake`` runs under callgrind with
counting off; after a warm-up, counting is switched on (``callgrind_control``) for N
requests sent one at a time on one keep-alive connection, then dumped. The count is the
user-space instructions the server executed for those requests (the kernel's share and
waiting are not counted), and two runs of the same code agree to about 1%.

The ratios are the ceiling's count over the row's, as ``bench_intake`` gives its req/s
ratio (1.0x: the row costs what its ceiling costs). Skipped where valgrind is missing.

Settings (environment): BENCH_INSTRUCTIONS_REQUESTS (counted requests per server, default
200), BENCH_INSTRUCTIONS_ONLY (``sqlite`` or ``pg``), BENCH_INSTRUCTIONS_KEEP (a directory:
each server's dump is kept there, for ``callgrind_annotate``), BENCH_REDIS_URL,
TEST_POSTGRES_DSN, BENCH_HISTORY (as for ``bench_intake``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench import intake_check
from bench.bench_intake import REDIS_URL, _flush_redis, _reset_pg
from bench.intake_load import LoadSpec, build_requests
from bench.intake_run import Server

REQUESTS = int(os.environ.get("BENCH_INSTRUCTIONS_REQUESTS", "200"))
ONLY = os.environ.get("BENCH_INSTRUCTIONS_ONLY", "")
KEEP = os.environ.get("BENCH_INSTRUCTIONS_KEEP")
WARMUP = 50
START_SECONDS = 240.0  # a server starts 5-10x slower under valgrind


@dataclass
class Count:
    name: str
    instructions: int
    requests: int
    stored_and_queued: bool

    @property
    def per_request(self) -> float:
        return self.instructions / self.requests


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines
                   if line.lower().startswith("content-length:")), 0)
    await reader.readexactly(length)
    return int(lines[0].split(" ")[1])


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _totals(out_dir: Path, name: str) -> int:
    """The instruction total of the newest dump (``cg.PID.N``)."""
    dump = sorted(out_dir.glob("cg.*.*"), key=lambda p: p.stat().st_mtime)[-1]
    if KEEP:
        Path(KEEP).mkdir(parents=True, exist_ok=True)
        shutil.copy(dump, Path(KEEP) / f"{name.replace(' ', '_').replace(',', '')}.callgrind")
    for line in dump.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


async def _wait_for_port(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited while starting under valgrind")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the server did not listen within {START_SECONDS:g} s under valgrind")


async def _count(name: str, server: Server, check: object) -> Count:
    out_dir = Path(tempfile.mkdtemp(prefix="wta-callgrind-"))
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={out_dir}/cg.%p", *server.argv]
    env = {**server.env, "PYTHONHASHSEED": "0"}
    # Popen only forks and returns; the waiting is on the loop.
    process = subprocess.Popen(  # noqa: ASYNC220
        argv, env=env, cwd=server.cwd, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        await _wait_for_port(process, server.port)
        spec = LoadSpec(port=server.port, connections=1, duration=0, warmup=0,
                        sid_prefix=uuid.uuid4().hex[:12], max_requests=WARMUP + REQUESTS)
        requests = build_requests(spec)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for _, raw in requests[:WARMUP]:
            await _request(reader, writer, raw)
        await asyncio.to_thread(_control, process.pid, "--zero")
        await asyncio.to_thread(_control, process.pid, "--instr=on")
        statuses = [await _request(reader, writer, raw) for _, raw in requests[WARMUP:]]
        await asyncio.to_thread(_control, process.pid, "--instr=off")
        await asyncio.to_thread(_control, process.pid, "--dump")
        writer.close()
        if statuses != [200] * REQUESTS:
            raise RuntimeError(f"{name}: answers other than 200: {sorted(set(statuses))}")
        sids = [sid for sid, _ in requests]
        stored, queued = await check(sids)  # type: ignore[operator]
        return Count(name, _totals(out_dir, name), REQUESTS, stored == queued == len(sids))
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(out_dir, ignore_errors=True)


async def _sqlite(tmp: Path) -> list[Count]:
    ceiling_db, app_db, queue_db = tmp / "ceiling.db", tmp / "app.db", tmp / "queue.db"

    async def ceiling_check(sids: list[str]) -> tuple[int, int]:
        return intake_check.check_sqlite_ceiling(ceiling_db, sids)

    async def app_check(sids: list[str]) -> tuple[int, int]:
        return intake_check.check_embedded(app_db, queue_db, sids)

    env = {"DATABASE_URL": f"sqlite:///{app_db}", "QUEUE_SQLITE_DB_PATH": str(queue_db)}
    return [
        await _count("bare + validator + SQLite insert",
                     Server.reference("sqlite", str(ceiling_db)), ceiling_check),
        await _count("wta serve, embedded defaults",
                     Server.wta(env, tmp, "instructions-sqlite", 1), app_check),
    ]


async def _pg(tmp: Path) -> list[Count]:
    dsn = await _reset_pg()
    await _flush_redis()

    async def ceiling_check(sids: list[str]) -> tuple[int, int]:
        return await intake_check.check_pg_ceiling(dsn, REDIS_URL, sids)

    async def app_check(sids: list[str]) -> tuple[int, int]:
        return await intake_check.check_pg_arq(dsn, REDIS_URL, sids)

    env = {"DATABASE_BACKEND": "postgres", "DATABASE_URL": dsn, "QUEUE_BACKEND": "arq",
           "QUEUE_REDIS_URL": REDIS_URL}
    return [
        await _count("bare + validator + asyncpg INSERT + Redis LPUSH",
                     Server.reference("pg", dsn, REDIS_URL), ceiling_check),
        await _count("wta serve, postgres + arq",
                     Server.wta(env, tmp, "instructions-pg", 1), app_check),
    ]


def _print(counts: list[Count]) -> None:
    bare = counts[0].per_request
    print(f"{'server':<48} {'M instr/req':>11} {'x ceil':>7} {'x bare':>7}  stored+queued")
    ceiling = None
    for count in counts:
        if count.name.startswith("bare +"):
            ceiling = count.per_request
        own = count.name.startswith("wta")
        ratio = f"{ceiling / count.per_request:.2f}x" if own and ceiling else ""
        ok = "ok" if count.stored_and_queued else "MISSING"
        print(f"{count.name:<48} {count.per_request / 1e6:>11.2f} {ratio:>7} "
              f"{bare / count.per_request:>6.2f}x  {ok}")


async def main() -> None:
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("skipped: valgrind (with callgrind_control) is not installed")
        return
    print(f"{REQUESTS} requests per server, one at a time on one keep-alive connection, "
          f"after {WARMUP} uncounted; user-space instructions of the server process; "
          "ratios: the ceiling's (or bare's) count over the row's", flush=True)
    with tempfile.TemporaryDirectory(prefix="wta-bench-instructions-") as name:
        tmp = Path(name)

        async def bare_check(sids: list[str]) -> tuple[int, int]:
            return len(sids), len(sids)

        counts = [await _count("bare FastAPI form endpoint", Server.reference("bare"),
                               bare_check)]
        if ONLY in ("", "sqlite"):
            counts += await _sqlite(tmp)
        if ONLY in ("", "pg"):
            counts += await _pg(tmp)
    _print(counts)
