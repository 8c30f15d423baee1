"""The chaos suite's machinery: real ``wta`` processes, a webhook load, and the ledger.

``Cluster`` starts ``wta serve`` / ``wta worker`` as subprocesses on one configuration.
``Load`` posts signed inbound webhooks at a steady rate from a thread and, like Twilio,
posts a message again (same MessageSid) until it gets a 200. ``SendClock`` watches the
fake Twilio server and timestamps every accepted send, which gives the recovery times.
``verdict`` checks the ledger: every 200-acknowledged message got exactly one reply.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from adapters.fastapi.webhooks import PREFIX
from bootstrap.settings import Settings
from bootstrap.simulate import inbound_params, sign
from tests.fakes.fake_twilio import FakeTwilioServer

ROOT = Path(__file__).resolve().parents[2]
WTA = [sys.executable, "-m", "bootstrap.cli"]
OUR_NUMBER = "whatsapp:+14155238886"
CONTACTS = [f"whatsapp:+55119{n:08d}" for n in range(1, 9)]
_PROJECT_PREFIXES = ("API_", "DATABASE_", "QUEUE_", "TWILIO_", "LLM_", "WORKER_", "SUPABASE_",
                     "LOG_", "OTEL_")


class Cluster:
    """``wta`` processes sharing one environment; logs go to files under ``tmp_path``."""

    def __init__(self, tmp_path: Path, port: int, twilio: FakeTwilioServer,
                 **values: str) -> None:
        self.tmp_path, self.port = tmp_path, port
        self.base_url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(_PROJECT_PREFIXES)}
        self.env = env | {
            "API_ENVIRONMENT": "test",
            "API_PORT": str(port),
            "API_PUBLIC_BASE_URL": self.base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
            "QUEUE_SQLITE_DB_PATH": str(tmp_path / "queue.db"),
            "QUEUE_POLL_INTERVAL_SECONDS": "0.2",
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_API_BASE_URL": twilio.base_url,
            "TWILIO_PHONE_NUMBER": OUR_NUMBER,
            "WORKER_BACKOFF_BASE_SECONDS": "0.2",
            "WORKER_BACKOFF_MAX_SECONDS": "1",
            "QUEUE_MAX_ATTEMPTS": "20",
            "LOG_LEVEL": os.environ.get("CHAOS_LOG_LEVEL", "WARNING"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
        } | values
        self.procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def migrate(self) -> None:
        done = subprocess.run([*WTA, "migrate"], env=self.env, cwd=self.tmp_path,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"{name}-{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([*WTA, *args], env=self.env, cwd=self.tmp_path,
                                    stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((name, proc, log))
        return proc

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the API never became ready\n{self.output()}")

    @staticmethod
    def kill9(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def output(self) -> str:
        return "\n".join(f"--- {name} ({log.name})\n{log.read_text(errors='replace')[-4000:]}"
                         for name, _, log in self.procs)

    def stop_all(self) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


@dataclass
class Load:
    """``count`` distinct messages at ``rate`` per second, each re-posted until a 200."""

    cluster: Cluster
    twilio: FakeTwilioServer
    count: int = 60
    rate: float = 20.0
    give_up_after: float = 40.0
    acked: dict[str, float] = field(default_factory=dict)  # body -> monotonic time of the 200
    refusals: list[tuple[str, int, str]] = field(default_factory=list)  # 4xx: a test bug
    attempts: int = 0
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._settings = Settings(  # type: ignore[call-arg]
            _env_file=None, twilio_account_sid=self.twilio.account_sid,
            twilio_auth_token=self.twilio.auth_token, twilio_phone_number=OUR_NUMBER)
        self._url = f"{self.cluster.base_url}{PREFIX}/inbound"
        self._tag = f"{time.time_ns() & 0xFFFFFFFF:08x}"

    def body(self, n: int) -> str:
        return f"chaos {self._tag} #{n}"

    def start(self) -> Load:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the load did not finish"

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            started = time.monotonic()
            tasks = []
            for n in range(self.count):
                await asyncio.sleep(max(0.0, started + n / self.rate - time.monotonic()))
                tasks.append(asyncio.create_task(self._deliver(client, n)))
            await asyncio.gather(*tasks)

    async def _deliver(self, client: httpx.AsyncClient, n: int) -> None:
        body = self.body(n)
        # SM + 32 hex, as Twilio's MessageSid.
        sid = f"SM{self._tag}{n:024x}"
        params = inbound_params(self._settings, body, CONTACTS[n % len(CONTACTS)], sid)
        headers = {"X-Twilio-Signature": sign(self._settings, self._url, params)}
        deadline = time.monotonic() + self.give_up_after
        while time.monotonic() < deadline:
            self.attempts += 1
            try:
                response = await client.post(self._url, data=params, headers=headers)
            except httpx.HTTPError:
                await asyncio.sleep(0.2)  # down or cut off mid-request: Twilio tries again
                continue
            if response.status_code == 200:
                self.acked[body] = time.monotonic()
                return
            if 400 <= response.status_code < 500:
                self.refusals.append((body, response.status_code, response.text[:200]))
                return
            await asyncio.sleep(0.2)


class SendClock:
    """Timestamps each send the fake Twilio server accepts (polled every 10 ms)."""

    def __init__(self, twilio: FakeTwilioServer) -> None:
        self._twilio = twilio
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> SendClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _watch(self) -> None:
        while not self._stop.is_set():
            seen = len(self._twilio.sent)
            now = time.monotonic()
            self.times += [now] * (seen - len(self.times))
            time.sleep(0.01)

    def first_after(self, moment: float) -> float | None:
        return next((t for t in self.times if t > moment), None)


def claimed_unsent(cluster: Cluster) -> set[str]:
    """Bodies of messages whose reply is claimed (``sending``) but never reached Twilio.

    A process killed between committing the claim and making the Twilio call leaves its
    reply so: by design it is never sent again (Twilio may have it), and it waits for a
    human. This is the one window kill -9 can hit; it is counted, never hidden.
    """
    with sqlite3.connect(cluster.tmp_path / "app.db") as conn:
        rows = conn.execute(
            "SELECT i.body FROM messages r JOIN messages i ON i.id = r.reply_to_id"
            " WHERE r.status = 'sending'").fetchall()
    conn.close()
    return {row[0] for row in rows}


def wait_for_replies(load: Load, twilio: FakeTwilioServer, cluster: Cluster,
                     timeout: float, held: set[str] | None = None) -> float:
    """Blocks until every acknowledged message has a reply; the monotonic time it did.

    ``held``: messages whose reply is claimed but was cut off before Twilio (not waited for).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replied = {s.body for s in twilio.sent}
        if all(f"Echo: {body}" in replied for body in set(load.acked) - (held or set())):
            return time.monotonic()
        time.sleep(0.02)
    missing = sorted(set(load.acked) - {(s.body or "")[6:] for s in twilio.sent})
    raise AssertionError(f"{len(missing)} acknowledged message(s) never answered: "
                         f"{missing[:5]}\n{cluster.output()}")


def verdict(name: str, load: Load, twilio: FakeTwilioServer, clock: SendClock,
            fault_at: float, all_replied_at: float, held: set[str] | None = None) -> None:
    """Exactly one reply per acknowledged message, none doubled; prints the timings."""
    assert not load.refusals, load.refusals[:3]
    sends = Counter(s.body for s in twilio.sent)
    doubled = {body: n for body, n in sends.items() if n > 1}
    assert not doubled, f"replies sent more than once: {doubled}"
    held = held or set()
    expected = {f"Echo: {body}" for body in set(load.acked) - held}
    assert expected <= set(sends)
    # A message never acknowledged may have been stored before the fault; at most one reply.
    assert set(sends) <= {f"Echo: {load.body(n)}" for n in range(load.count)}
    first = clock.first_after(fault_at)
    first_text = f"{first - fault_at:.2f}s" if first is not None else "n/a"
    print(f"\nchaos[{name}]: {len(load.acked)}/{load.count} acknowledged "
          f"({load.attempts} posts), {sum(sends.values())} replies, 0 doubled, 0 lost, "
          f"{len(held)} claimed but cut off before Twilio (held, not resent); "
          f"last 200 {max(load.acked.values()) - fault_at:.2f}s after the fault, "
          f"first send after it {first_text}, "
          f"all replies {all_replied_at - fault_at:.2f}s after the fault")
