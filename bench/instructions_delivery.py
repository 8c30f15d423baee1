"""Delivery cost as instructions per message: webhook in, reply sent to the recorder.

The setups of ``bench_delivery`` (bare, the embedded defaults with their embedded worker,
postgres + arq with a separate worker) run under callgrind (``callgrind.py``); the recorder
stands in for Twilio as there, uncounted. Messages go one at a time: each webhook is posted
and its reply awaited at the recorder before the next, so the count is the whole path's
work per message, in every process of the setup together (API and worker), whatever the
machine's speed is doing meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx

from bench import callgrind
from bench.bench_delivery import prepared
from bench.delivery_servers import INBOUND_PATH
from bench.open_loop import signed_requests
from bench.processes import Processes, free_port

WARMUP = 20


def _healthy(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            return httpx.get(url + "/health/live", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


@contextlib.asynccontextmanager
async def _setup(name: str, workdir: Path,
                 recorder: str) -> AsyncIterator[tuple[str, list[callgrind.Counted]]]:
    with prepared(name, workdir, recorder) as setup:
        counted = [callgrind.Counted([sys.executable, *args], setup.procs.env, workdir)
                   for _, args in setup.commands]
        try:
            await callgrind.wait_until(_healthy(setup.url), counted)
            yield setup.url, counted
        finally:
            for process in counted:
                await asyncio.to_thread(process.stop)


async def _deliver(client: httpx.AsyncClient, url: str, recorder: str,
                   message: tuple[str, dict[str, str], str]) -> None:
    """Post one webhook and wait until the recorder holds its reply."""
    before = len((await client.get(recorder + "/records")).json())
    _, form, signature = message
    answer = await client.post(url + INBOUND_PATH, data=form,
                               headers={"X-Twilio-Signature": signature})
    if answer.status_code != 200:
        raise RuntimeError(f"webhook answered {answer.status_code}: {answer.text[:200]}")
    for _ in range(6000):  # 60 s: a reply takes well under a second, even under valgrind
        if len((await client.get(recorder + "/records")).json()) > before:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("no reply reached the recorder within 60 s")


async def count(name: str, messages: int, recorder: str,
                keep: Callable[[str], Path | None]) -> float:
    """Instructions per delivered message, all of the setup's processes together."""
    with tempfile.TemporaryDirectory(prefix="wta-instructions-delivery-") as tmp:
        async with _setup(name, Path(tmp), recorder) as (url, counted), \
                httpx.AsyncClient(timeout=30.0) as client:
            batch = signed_requests(url, WARMUP + messages, uuid.uuid4().hex[:8])
            for message in batch[:WARMUP]:
                await _deliver(client, url, recorder, message)
            async with callgrind.counting(counted):
                for message in batch[WARMUP:]:
                    await _deliver(client, url, recorder, message)
            total = sum(p.totals(keep(f"delivery {name} {n}")) for n, p in enumerate(counted))
    return total / messages


async def run(setups: list[str], messages: int,
              keep: Callable[[str], Path | None]) -> None:
    with tempfile.TemporaryDirectory(prefix="wta-instructions-recorder-") as tmp:
        recorder_port = free_port()
        recorder = f"http://127.0.0.1:{recorder_port}"
        servers = Processes(Path(tmp), {}, "recorder")
        servers.start("recorder", "-m", "bench.delivery_servers", "recorder",
                      str(recorder_port))
        try:
            servers.wait_ready(recorder)
            counts = [(name, await count(name, messages, recorder, keep))
                      for name in setups]
        finally:
            servers.stop()
    bare = dict(counts).get("bare")
    print(f"\ndelivery, webhook -> reply sent, {messages} messages one at a time after "
          f"{WARMUP} uncounted; every process of the setup counted together")
    print(f"{'setup':<16} {'M instr/msg':>11} {'x bare':>7}")
    for name, per_message in counts:
        ratio = f"{bare / per_message:.2f}x" if bare else ""
        print(f"{name:<16} {per_message / 1e6:>11.2f} {ratio:>7}")
