"""Server processes under callgrind, counting instructions only while they are asked to.

A process starts with counting off (``--instr-atstart=no``: valgrind still runs it, 5-10x
slower); ``counting`` zeroes and switches counting on in every process given, and on
leaving switches it off and dumps, so ``totals`` is what the processes executed for the
work done inside the block. User-space instructions: the kernel's share and waiting are
not counted, which is what makes the count repeatable on a busy machine.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

START_SECONDS = 240.0  # a server starts 5-10x slower under valgrind


def available() -> bool:
    return bool(shutil.which("valgrind") and shutil.which("callgrind_control"))


class Counted:
    """One process under callgrind; ``out_dir`` holds its dumps (removed by ``stop``)."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path | None) -> None:
        self.out_dir = Path(tempfile.mkdtemp(prefix="wta-callgrind-"))
        self.process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={self.out_dir}/cg.%p", *argv],
            env={**env, "PYTHONHASHSEED": "0"}, cwd=cwd,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def control(self, *args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(self.process.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def totals(self, keep: Path | None = None) -> int:
        """Instructions in the newest dump; a copy goes to ``keep`` for callgrind_annotate."""
        dump = sorted(self.out_dir.glob("cg.*.*"), key=lambda p: p.stat().st_mtime)[-1]
        if keep is not None:
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(dump, keep)
        for line in dump.read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1])
        raise RuntimeError(f"no totals in {dump}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.out_dir, ignore_errors=True)


async def wait_until(ready: Callable[[], bool], processes: Sequence[Counted]) -> None:
    """Wait (on the loop) until ``ready()``, failing if a process exits first."""
    deadline = time.monotonic() + START_SECONDS
    while not await asyncio.to_thread(ready):
        if any(p.process.poll() is not None for p in processes):
            raise RuntimeError("a process exited while starting under valgrind")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready within {START_SECONDS:g} s under valgrind")
        await asyncio.sleep(0.2)


@asynccontextmanager
async def counting(processes: Sequence[Counted]) -> AsyncIterator[None]:
    for p in processes:
        await asyncio.to_thread(p.control, "--zero")
        await asyncio.to_thread(p.control, "--instr=on")
    yield
    for p in processes:
        await asyncio.to_thread(p.control, "--instr=off")
        await asyncio.to_thread(p.control, "--dump")
