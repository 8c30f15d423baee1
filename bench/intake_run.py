"""Processes of the intake benchmark: the server under test and the load generators."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from bench import history
from bench.cpu_time import process_tree_cpu
from bench.intake_load import LoadResult, LoadSpec
from bench.intake_load import run_load as load_process
from bench.processes import ROOT

WARMUP = 1.0
PEAK_RATE = 7000  # requests/s one run may need at most; requests are pre-built
LOAD_PROCS = int(os.environ.get("BENCH_LOAD_PROCS", "1"))
PROFILE_DIR = os.environ.get("BENCH_INTAKE_PROFILE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``async with server:`` starts the process and waits for its port; leaving stops it."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path | None = None,
                 profile_name: str | None = None) -> None:
        self.port = free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        # This checkout's code, not what the environment installed (an A/B from a worktree).
        self.env = {**env, "PYTHONPATH": str(ROOT)}
        self.cwd = cwd
        self.profile_name = profile_name
        self.process: subprocess.Popen[bytes] | None = None
        self.profiler: subprocess.Popen[bytes] | None = None

    @classmethod
    def reference(cls, kind: str, *args: str) -> Server:
        return cls([sys.executable, "-m", "bench.intake_servers", kind, "{port}", *args],
                   dict(os.environ))

    @classmethod
    def wta(cls, overrides: dict[str, str], cwd: Path, name: str, workers: int) -> Server:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DATABASE_", "QUEUE_", "API_", "WORKER_"))}
        env.update(overrides)
        env["PYTHONPATH"] = str(ROOT)
        # cwd: a directory without a .env, so only these settings count.
        subprocess.run([sys.executable, "-m", "bootstrap.cli", "migrate"], env=env, cwd=cwd,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        history.seed(overrides["DATABASE_URL"], history.history_size())
        argv = [sys.executable, "-m", "bootstrap.cli", "serve", "--port", "{port}"]
        if workers > 1:
            argv += ["--workers", str(workers)]
        return cls(argv, env, cwd, name)

    async def __aenter__(self) -> Server:
        # Popen only forks and returns; the waiting below is on the loop.
        self.process = subprocess.Popen(  # noqa: ASYNC220
            self.argv, env=self.env, cwd=self.cwd,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start: {' '.join(self.argv)}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError("server did not start listening")
        spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}"
                           f"{os.environ.get('PATH', '')}")
        if PROFILE_DIR and self.profile_name and spy:
            out = Path(PROFILE_DIR) / f"{self.profile_name}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            self.profiler = subprocess.Popen(  # noqa: ASYNC220
                [spy, "record", "--pid", str(self.process.pid), "--format", "raw",
                 "--subprocesses", "--threads", "--idle", "--nonblocking", "--rate", "100",
                 "-o", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(0.5)
        return self

    def cpu_seconds(self) -> float:
        """CPU time the server (all its processes) has used so far."""
        return process_tree_cpu(self.process.pid) if self.process else 0.0

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.profiler:
            self.profiler.send_signal(signal.SIGINT)
            await asyncio.to_thread(self.profiler.wait, 30)
        if self.process:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_load(port: int, concurrency: int, seconds: float, tag: str) -> LoadResult:
    """Run the load generator processes against ``port`` and merge their results."""
    ctx = multiprocessing.get_context("spawn")
    procs = max(1, min(LOAD_PROCS, concurrency))
    results = ctx.Queue()
    go = ctx.Event()
    workers = []
    for n in range(procs):
        ready = ctx.Event()
        conns = concurrency // procs + (1 if n < concurrency % procs else 0)
        spec = LoadSpec(port=port, connections=conns, duration=seconds, warmup=WARMUP,
                        sid_prefix=f"{tag}{n:02d}",
                        max_requests=int(PEAK_RATE * (seconds + WARMUP) / procs))
        proc = ctx.Process(target=load_process, args=(spec, ready, go, results), daemon=True)
        proc.start()
        workers.append((proc, ready))
    for _, ready in workers:
        ready.wait(120)
    go.set()
    merged = LoadResult(measured_seconds=seconds)
    for _ in workers:
        part: LoadResult = results.get(timeout=seconds + WARMUP + 60)
        merged.latencies_ns += part.latencies_ns
        merged.ok_sids += part.ok_sids
        merged.socket_errors += part.socket_errors
        merged.exhausted = merged.exhausted or part.exhausted
        for status, count in part.statuses.items():
            merged.statuses[status] = merged.statuses.get(status, 0) + count
    for proc, _ in workers:
        proc.join(10)
    return merged
