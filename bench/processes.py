"""Real server processes on 127.0.0.1 for the end-to-end benchmarks, optionally profiled.

With ``BENCH_PROFILE=DIR`` every process runs under ``py-spy record`` (collapsed stacks,
one file per process in DIR); ``python -m bench.profile_summary DIR/*.txt`` reads them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
_OWN_PREFIXES = ("API_", "DATABASE_", "QUEUE_", "TWILIO_", "WORKER_", "LLM_", "LOG_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """Starts processes with one environment; stops them all (SIGINT, then kill)."""

    def __init__(self, workdir: Path, env: dict[str, str], label: str) -> None:
        self.workdir = workdir
        self.label = label
        base = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
        self.env = {**base, **env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        # By name, in start order; a name starts one process.
        self.named: dict[str, subprocess.Popen[bytes]] = {}
        self.profile_dir = os.environ.get("BENCH_PROFILE")

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        if name in self.named:
            raise ValueError(f"a process named {name!r} is already started")
        argv = [sys.executable, *args]
        if self.profile_dir:
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            out = Path(self.profile_dir) / f"{self.label}-{name}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            argv = [spy, "record", "--format", "raw", "--rate", "200", "--idle",
                    "--threads", "-o", str(out), "--", *argv]
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, env=self.env, cwd=self.workdir, stdout=log,
                                stderr=subprocess.STDOUT)
        self.named[name] = proc
        return proc

    @property
    def procs(self) -> list[subprocess.Popen[bytes]]:
        return list(self.named.values())

    def run(self, *args: str) -> None:
        subprocess.run([sys.executable, *args], env=self.env, cwd=self.workdir, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"a process of {self.label} exited; see {self.workdir}")
            try:
                if httpx.get(url + "/health/live", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{url} not ready after {timeout}s")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.named.clear()
