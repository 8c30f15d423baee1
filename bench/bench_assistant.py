"""The reply path with a model that takes 300 ms: webhook posted -> Twilio REST call.

200 conversations (one message each, from 200 contacts) arrive within
``BENCH_ASSISTANT_SPREAD_SECONDS``; the model (``bench/assistant_servers.py``) answers each
after ``BENCH_ASSISTANT_MODEL_SECONDS`` (0.3). Setups, as real processes on 127.0.0.1:

- bare: signature check, model call, send, in the webhook handler (the baseline);
- embedded: ``wta serve --with-worker`` on the embedded defaults (SQLite, SQLite queue),
  ``LLM_PROVIDER=openai`` against the model server;
- embedded-c16: the same with ``WORKER_CONCURRENCY=16``, the default before the
  reply path's jobs were known to wait on the model most of their time (for comparison).

Reported per setup: p50/p99 from each webhook's scheduled time to its send reaching the
recorder, the overhead (that latency minus the model's fixed time), and the ratio of the
overhead p50 to the bare one. Target: p99 < 1 s on the embedded defaults.

Settings (environment): BENCH_ASSISTANT_CONVERSATIONS (200), BENCH_ASSISTANT_SPREAD_SECONDS
(0.5), BENCH_ASSISTANT_MODEL_SECONDS (0.3), BENCH_ASSISTANT_SETUPS (all),
BENCH_ASSISTANT_DRAIN_SECONDS (30).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.assistant_servers import API_KEY, MODEL
from bench.cpu_time import process_tree_cpu
from bench.delivery_servers import ACCOUNT_SID, AUTH_TOKEN
from bench.open_loop import OUR_NUMBER, RunResult, run_open_loop
from bench.processes import Processes, free_port

P99_TARGET = 1.0


def _env(workdir: Path, recorder: str, model: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{workdir / 'app.db'}",
        "QUEUE_SQLITE_DB_PATH": str(workdir / "queue.db"),
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": OUR_NUMBER, "TWILIO_API_BASE_URL": recorder,
        "LLM_PROVIDER": "openai", "LLM_BASE_URL": model, "LLM_API_KEY": API_KEY,
        "LLM_MODEL_NAME": MODEL, "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    }


@contextmanager
def _setup(name: str, workdir: Path, recorder: str, model: str
           ) -> Iterator[tuple[str, Callable[[], float]]]:
    """The setup's URL, and the CPU seconds its server process has used so far."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(workdir, recorder, model)
    if name == "embedded-c16":
        env["WORKER_CONCURRENCY"] = "16"
    procs = Processes(workdir, env, name)
    try:
        if name == "bare":
            procs.start("bare", "-m", "bench.assistant_servers", "bare", str(port), recorder,
                        model)
        else:
            procs.run("-m", "bootstrap.cli", "migrate")
            procs.start("api", "-m", "bootstrap.cli", "serve", "--port", str(port),
                        "--with-worker")
        procs.wait_ready(url)
        server = procs.procs[-1].pid
        yield url, lambda: process_tree_cpu(server)
    finally:
        procs.stop()


def _overheads(r: RunResult, model_seconds: float) -> list[float]:
    return [max(0.0, x - model_seconds) for x in r.latencies]


def _row(setup: str, r: RunResult, model_seconds: float, bare: RunResult | None,
         cpu_seconds: float) -> str:
    over = _overheads(r, model_seconds)
    ratio = "-"
    if bare is not None and bare.latencies and over:
        bare_over = r.percentile(_overheads(bare, model_seconds), 50)
        ratio = f"{r.percentile(over, 50) / bare_over:.1f}x" if bare_over > 0 else "-"
    verdict = ""
    if setup == "embedded":
        ok = r.p99 < P99_TARGET and r.lost == 0 and r.doubled == 0 and r.errors == 0
        verdict = f"  target p99<{P99_TARGET * 1000:.0f} ms: " + ("ok" if ok else "MISSED")
    return (f"{setup:>14}  sent {len(r.latencies):>4}/{r.sent:<4} "
            f"p50 {r.p50 * 1000:7.1f} ms  p99 {r.p99 * 1000:7.1f} ms  "
            f"overhead p50 {r.percentile(over, 50) * 1000:7.1f} ms  "
            f"p99 {r.percentile(over, 99) * 1000:7.1f} ms  errors {r.errors}  "
            f"unsent {r.lost}  doubled {r.doubled}  overhead p50/bare {ratio}  "
            f"server cpu {cpu_seconds / max(1, r.sent) * 1000:.2f} ms/msg{verdict}")


def run(report: Callable[[str], None] = print) -> int:
    n = int(os.environ.get("BENCH_ASSISTANT_CONVERSATIONS", "200"))
    spread = float(os.environ.get("BENCH_ASSISTANT_SPREAD_SECONDS", "0.5"))
    model_seconds = float(os.environ.get("BENCH_ASSISTANT_MODEL_SECONDS", "0.3"))
    drain = float(os.environ.get("BENCH_ASSISTANT_DRAIN_SECONDS", "30"))
    setups = [s.strip() for s in os.environ.get(
        "BENCH_ASSISTANT_SETUPS", "bare,embedded,embedded-c16").split(",") if s.strip()]
    report(f"{n} conversations within {spread:g} s, model answers in {model_seconds:g} s; "
           "latency = webhook scheduled -> send recorded; overhead = latency - model time")
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-assistant-") as tmp:
        recorder_port, model_port = free_port(), free_port()
        recorder = f"http://127.0.0.1:{recorder_port}"
        model = f"http://127.0.0.1:{model_port}/v1"
        servers = Processes(Path(tmp), {}, "servers")
        servers.start("recorder", "-m", "bench.delivery_servers", "recorder", str(recorder_port))
        servers.start("model", "-m", "bench.assistant_servers", "model", str(model_port),
                      str(model_seconds))
        try:
            servers.wait_ready(recorder)
            servers.wait_ready(f"http://127.0.0.1:{model_port}")
            bare: RunResult | None = None
            for setup in setups:
                with tempfile.TemporaryDirectory(prefix=f"bench-{setup}-") as work, \
                        _setup(setup, Path(work), recorder, model) as (url, cpu):
                    before = cpu()
                    result = asyncio.run(run_open_loop(url, recorder, n / spread, spread, drain))
                    cpu_seconds = cpu() - before
                if setup == "bare":
                    bare = result
                line = _row(setup, result, model_seconds, bare, cpu_seconds)
                ok &= "MISSED" not in line
                report(line)
        finally:
            servers.stop()
    return 0 if ok else 1


def main() -> int:
    return run()
