"""Cost as instructions per request, counted by valgrind: repeatable on a drifting machine.

The intake and delivery benchmarks time real load, and on a shared machine their CPU
figures move by 30-40% between runs of the same code, so a change worth 2-5% per message
cannot be seen in them. Here each server of ``bench_intake`` runs under callgrind with
counting off; after a warm-up, counting is switched on (``callgrind_control``) for N
requests sent one at a time on one keep-alive connection, then dumped. The count is the
user-space instructions the server executed for those requests (the kernel's share and
waiting are not counted), and two runs of the same code agree to about 1%.

The ratios are the ceiling's count over the row's, as ``bench_intake`` gives its req/s
ratio (1.0x: the row costs what its ceiling costs). Skipped where valgrind is missing.

Then the same for the whole path, webhook in to reply sent (``instructions_delivery.py``),
beside ``bench_delivery``'s bare server.

Settings (environment): BENCH_INSTRUCTIONS_REQUESTS (counted webhooks per intake server,
default 200), BENCH_INSTRUCTIONS_MESSAGES (counted messages per delivery setup, default
100), BENCH_INSTRUCTIONS_PATHS (``intake,delivery``), BENCH_INSTRUCTIONS_ONLY (``sqlite`` or
``pg``), BENCH_INSTRUCTIONS_KEEP (a directory: each process's dump is kept there, for
``callgrind_annotate``), BENCH_REDIS_URL, TEST_POSTGRES_DSN, BENCH_HISTORY (as for
``bench_intake``).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import callgrind, instructions_delivery
from bench.bench_intake import Check, bare_server, pg_servers, sqlite_servers
from bench.intake_load import LoadSpec, build_requests
from bench.intake_run import Server

REQUESTS = int(os.environ.get("BENCH_INSTRUCTIONS_REQUESTS", "200"))
ONLY = os.environ.get("BENCH_INSTRUCTIONS_ONLY", "")
KEEP = os.environ.get("BENCH_INSTRUCTIONS_KEEP")
MESSAGES = int(os.environ.get("BENCH_INSTRUCTIONS_MESSAGES", "100"))
PATHS = os.environ.get("BENCH_INSTRUCTIONS_PATHS", "intake,delivery").split(",")
WARMUP = 50


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


def _listening(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    return probe


def keep_path(name: str) -> Path | None:
    return Path(KEEP) / f"{re.sub(r'[^A-Za-z0-9]+', '_', name)}.callgrind" if KEEP else None


async def _count(name: str, server: Server, check: Check) -> Count:
    counted = callgrind.Counted(server.argv, server.env, server.cwd)
    try:
        await callgrind.wait_until(_listening(server.port), [counted])
        spec = LoadSpec(port=server.port, connections=1, duration=0, warmup=0,
                        sid_prefix=uuid.uuid4().hex[:12], max_requests=WARMUP + REQUESTS)
        requests = build_requests(spec)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for _, raw in requests[:WARMUP]:
            await _request(reader, writer, raw)
        async with callgrind.counting([counted]):
            statuses = [await _request(reader, writer, raw) for _, raw in requests[WARMUP:]]
        writer.close()
        if statuses != [200] * REQUESTS:
            raise RuntimeError(f"{name}: answers other than 200: {sorted(set(statuses))}")
        stored, queued = await check([sid for sid, _ in requests])
        return Count(name, counted.totals(keep_path(name)), REQUESTS,
                     stored == queued == len(requests))
    finally:
        await asyncio.to_thread(counted.stop)


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
    if not callgrind.available():
        print("skipped: valgrind (with callgrind_control) is not installed")
        return
    if "intake" in PATHS:
        await _intake()
    if "delivery" in PATHS:
        setups = ["bare"] + [s for s, kind in (("embedded", "sqlite"), ("pg+arq", "pg"))
                             if ONLY in ("", kind)]
        await instructions_delivery.run(setups, MESSAGES, keep_path)


async def _intake() -> None:
    print(f"intake, {REQUESTS} requests per server, one at a time on one keep-alive "
          f"connection, after {WARMUP} uncounted; user-space instructions of the server "
          "process; ratios: the ceiling's (or bare's) count over the row's", flush=True)
    with tempfile.TemporaryDirectory(prefix="wta-bench-instructions-") as name:
        tmp = Path(name)
        contenders = [bare_server()]
        if ONLY in ("", "sqlite"):
            contenders += sqlite_servers(tmp, "instructions", "instructions-sqlite", 1)
        if ONLY in ("", "pg"):
            contenders += await pg_servers(tmp, "instructions-pg", 1)
        counts = [await _count(*contender) for contender in contenders]
    _print(counts)
