"""Real worker processes and real signals, on the SQLite queue and on arq (Redis db 15).

Work comes in through ``ReceiveInboundMessage`` in the test process; ``wta worker`` (or
``arq bootstrap.worker.WorkerSettings``) processes it; the fake Twilio server counts sends.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from adapters.arq_queue import ArqJobQueue
from adapters.sqlite_queue.wakeup import wake_directory
from application.ports.job_queue import DeadLetterStore
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from application.use_cases.receive_inbound import InboundMessage, ReceiveInboundMessage
from bootstrap.cli import migrate
from bootstrap.container import Resources, build_container
from bootstrap.settings import Settings
from tests.fakes.fake_twilio import FakeTwilioServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
OUR_NUMBER = "whatsapp:+14155238886"
CONTACT = "whatsapp:+5511977776666"


class World:
    """One configuration shared by the test process and the worker processes it starts."""

    def __init__(self, tmp_path: Path, backend: str, redis_url: str | None,
                 twilio: FakeTwilioServer, **extra: str) -> None:
        self.tmp_path = tmp_path
        self.values = {
            "API_ENVIRONMENT": "test",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
            "QUEUE_BACKEND": backend,
            "QUEUE_SQLITE_DB_PATH": str(tmp_path / "queue.db"),
            "QUEUE_POLL_INTERVAL_SECONDS": "0.1",
            "QUEUE_REDIS_URL": redis_url or "redis://127.0.0.1:6379/15",
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_API_BASE_URL": twilio.base_url,
            "TWILIO_PHONE_NUMBER": OUR_NUMBER,
            "WORKER_CONCURRENCY": "1",
            "WORKER_SWEEP_INTERVAL_SECONDS": "0",
            # Off unless a test turns it on: its cron job would sit in arq's queue.
            "ASSISTANT_LIFECYCLE_INTERVAL_SECONDS": "0",
            **extra,
        }
        self.settings = Settings(_env_file=None, **{k.lower(): v for k, v in self.values.items()})  # type: ignore[arg-type]
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        migrate(self.settings)

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("API_", "DATABASE_", "QUEUE_", "TWILIO_", "WORKER_"))}
        return {**base, **self.values, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}

    def start(self, *argv: str) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"proc{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(list(argv), env=self.env(), cwd=self.tmp_path,
                                    stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((proc, log))
        return proc

    def start_worker(self) -> subprocess.Popen[bytes]:
        return self.start(sys.executable, "-m", "bootstrap.cli", "worker")

    def output(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')}"
                         for _, log in self.procs)

    def kill_all(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def run(self, coro: Any) -> Any:
        async def with_container() -> Any:
            container = build_container(self.settings)
            try:
                return await coro(container)
            finally:
                await container[Resources].aclose()

        return asyncio.run(with_container())

    def intake(self, *texts: str) -> list[str]:
        sids = [f"SM{n:032x}" for n in range(1, len(texts) + 1)]

        async def go(container: Any) -> None:
            for sid, text in zip(sids, texts, strict=True):
                await container[ReceiveInboundMessage].execute(InboundMessage(
                    message_sid=sid, owner_id=self.settings.owner_account_sid,
                    from_address=CONTACT, to_address=OUR_NUMBER, body=text))

        self.run(go)
        return sids

    def reply_status(self, sid: str) -> str:
        """The reply's delivery status, or "none" while no reply is stored."""
        async def go(container: Any) -> str:
            async with container[UnitOfWork] as uow:
                inbound = await uow.repository(MessageRepository).get_by_provider_sid(sid)
                reply = await uow.repository(MessageRepository).get_reply_to(inbound.id)
            return str(reply.status.value) if reply else "none"

        return str(self.run(go))

    def depth(self) -> int:
        async def go(container: Any) -> int:
            return int(await container[DeadLetterStore].depth())

        return int(self.run(go))


def wait_exit(proc: subprocess.Popen[bytes], world: World, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker still running after {timeout}s\n{world.output()}")


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        # A finished send then leaves the reply "sent"; one cut off stays claimed ("sending").
        server.reply_status = "sent"
        yield server


@pytest.fixture(params=["sqlite", "arq"])
def world(request: pytest.FixtureRequest, tmp_path: Path,
          twilio: FakeTwilioServer) -> Iterator[Any]:
    redis_url = None
    if request.param == "arq":
        redis_url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(redis_url).flushdb()

    def make(**extra: str) -> World:
        made = World(tmp_path, request.param, redis_url, twilio, **extra)
        worlds.append(made)
        return made

    worlds: list[World] = []
    yield make
    for made in worlds:
        made.kill_all()
    if redis_url:
        redis.Redis.from_url(redis_url).flushdb()


def test_sigterm_lets_the_running_job_finish_and_leaves_the_rest_queued(
    world: Any, twilio: FakeTwilioServer
) -> None:
    w: World = world(WORKER_SHUTDOWN_GRACE_SECONDS="10")
    one, two = w.intake("one", "two")
    twilio.delay_seconds = 1.5  # the first send is still in flight when SIGTERM lands
    worker = w.start_worker()
    [first] = twilio.wait_for_sends(1, timeout=30)
    worker.send_signal(signal.SIGTERM)
    assert wait_exit(worker, w, 20) == 0, w.output()
    assert len(twilio.sent) == 1
    running = one if first.body == "Echo: one" else two
    waiting = two if running == one else one
    assert w.reply_status(running) == "sent"  # finished inside the grace period
    # Never started: its job (reply, then send, in one) is still queued.
    assert w.reply_status(waiting) == "none"
    assert w.depth() == 1

    twilio.delay_seconds = 0
    second = w.start_worker()
    twilio.wait_for_sends(2, timeout=30)
    assert _settled(w, waiting)
    second.send_signal(signal.SIGTERM)
    assert wait_exit(second, w, 20) == 0, w.output()
    assert sorted(s.body for s in twilio.sent) == ["Echo: one", "Echo: two"]
    assert w.depth() == 0


def test_a_job_past_the_grace_period_is_handed_back_and_never_sent_twice(
    world: Any, twilio: FakeTwilioServer
) -> None:
    w: World = world(WORKER_SHUTDOWN_GRACE_SECONDS="0.5")
    one, two = w.intake("one", "two")
    twilio.delay_seconds = 8  # far past the grace period
    worker = w.start_worker()
    [first] = twilio.wait_for_sends(1, timeout=30)
    stopped = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert wait_exit(worker, w, 20) == 0, w.output()
    assert time.monotonic() - stopped < 6  # did not wait for the slow provider
    running = one if first.body == "Echo: one" else two
    waiting = two if running == one else one
    # Cut off mid-send: Twilio may have the message, so it stays claimed, never resent.
    assert w.reply_status(running) == "sending"
    assert w.depth() == 2  # the handed-back job and the one never started

    twilio.delay_seconds = 0
    second = w.start_worker()
    twilio.wait_for_sends(2, timeout=30)
    assert _settled(w, waiting)
    _wait_until(lambda: w.depth() == 0, w)  # the handed-back job ran (and sent nothing)
    second.send_signal(signal.SIGTERM)
    assert wait_exit(second, w, 20) == 0, w.output()
    assert sorted(s.body for s in twilio.sent) == ["Echo: one", "Echo: two"]
    assert w.reply_status(running) == "sending"


def _settled(w: World, sid: str) -> bool:
    _wait_until(lambda: w.reply_status(sid) == "sent", w)
    return True


def _wait_until(condition: Any, w: World, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met in {timeout}s\n{w.output()}")
        time.sleep(0.05)


def test_an_idle_worker_is_woken_by_another_process_enqueue_not_by_its_poll(
    world: Any, twilio: FakeTwilioServer
) -> None:
    # A poll this slow would miss every deadline below: only a wake-up can pass.
    w: World = world(QUEUE_POLL_INTERVAL_SECONDS="120")
    w.start_worker()
    _wait_until(lambda: _listening(w), w, timeout=30)  # idle, waiting to be woken
    w.intake("wake up")
    [sent] = twilio.wait_for_sends(1, timeout=30)
    assert sent.body == "Echo: wake up"


def _listening(w: World) -> bool:
    """Whether the worker waits for wake-ups: its socket is bound, or its channel subscribed."""
    if w.settings.queue_backend == "sqlite":
        directory = wake_directory(w.settings.queue_sqlite_db_path)
        return directory is not None and os.path.isdir(directory) and bool(os.listdir(directory))
    channel = ArqJobQueue(w.settings.queue_redis_url).wake_channel
    client = redis.Redis.from_url(w.settings.queue_redis_url)
    try:
        return bool(dict(client.pubsub_numsub(channel)).get(channel.encode()))
    finally:
        client.close()
