"""The WhatsApp channel end to end, on SQLite (its queue) and on arq + PostgreSQL: real
worker processes, the fake Twilio server over loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import redis

from application.ports.unit_of_work import UnitOfWork
from domain.long_text import split_text
from domain.message import Message
from tests.e2e.test_worker_process import World
from tests.fakes.fake_twilio import FakeTwilioServer

pytestmark = pytest.mark.e2e

# Echoed back with "Echo: ": about 3,900 characters, three parts.
LONG = " ".join(f"Sentence number {n} says something." for n in range(110))


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        server.reply_status = "sent"
        yield server


@pytest.fixture(params=["sqlite", "arq+postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path,
          twilio: FakeTwilioServer) -> Iterator[Any]:
    extra: dict[str, str] = {"WORKER_BACKOFF_BASE_SECONDS": "0.05"}
    redis_url = None
    backend = "sqlite"
    if request.param == "arq+postgres":
        backend = "arq"
        redis_url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(redis_url).flushdb()
        extra |= {"DATABASE_BACKEND": "postgres",
                  "DATABASE_URL": request.getfixturevalue("postgres_database")}
    made: list[World] = []

    def make(**more: str) -> World:
        w = World(tmp_path, backend, redis_url, twilio, **(extra | more))
        made.append(w)
        return w

    yield make
    for w in made:
        w.kill_all()
    if redis_url:
        redis.Redis.from_url(redis_url).flushdb()


def _reply(w: World, sid: str) -> Message | None:
    async def go(container: Any) -> Message | None:
        async with container[UnitOfWork] as uow:
            inbound = await uow.messages.get_by_provider_sid(sid)
            return await uow.messages.get_reply_to(inbound.id) if inbound else None

    result: Message | None = w.run(go)
    return result


def _wait_for(w: World, sid: str, status: str, timeout: float = 40) -> Message:
    deadline = time.monotonic() + timeout
    while True:
        reply = _reply(w, sid)
        if reply is not None and reply.status.value == status:
            return reply
        if time.monotonic() > deadline:
            pytest.fail(f"reply never became {status} (is {reply and reply.status})\n"
                        f"{w.output()}")
        time.sleep(0.1)


def test_a_long_reply_retried_three_times_mid_way_reaches_the_contact_once_per_part(
    world: Any, twilio: FakeTwilioServer
) -> None:
    w: World = world()
    # Part 1 is accepted; part 2 is refused three times with 503 + Retry-After: 1.
    twilio.fail_next(status=503, code=20503, times=3, retry_after="1", after_accepted=1)
    [sid] = w.intake(LONG)
    w.start_worker()
    reply = _wait_for(w, sid, "sent")
    parts = split_text("Echo: " + LONG)
    assert len(parts) == 3
    assert [s.body for s in twilio.sent] == parts, w.output()
    assert reply.provider_sid == twilio.sent[-1].sid
    # The three refusals, then part 2 and 3: each retry waited Retry-After at least.
    attempts = [a for a in twilio.attempts if a.status_code in (201, 503)]
    assert [a.status_code for a in attempts] == [201, 503, 503, 503, 201, 201]
    # Backoff alone would be ~0.1 s here (WORKER_BACKOFF_BASE_SECONDS=0.05).
    gaps = [b.received_at - a.received_at for a, b in pairwise(attempts[1:5])]
    assert all(gap >= 0.9 for gap in gaps), gaps
    time.sleep(1.0)  # room for a wrongly repeated part to show up
    assert len(twilio.sent) == 3


def test_bad_credentials_fail_the_reply_once_without_retries(
    world: Any, twilio: FakeTwilioServer
) -> None:
    w: World = world(TWILIO_AUTH_TOKEN="a-token-twilio-does-not-know")
    [sid] = w.intake("hello")
    w.start_worker()
    reply = _wait_for(w, sid, "failed")
    assert reply.error_code == "20003"
    assert reply.metadata["error"]["outcome"] == "bad_credentials"
    time.sleep(1.0)
    assert len(twilio.attempts) == 1  # no retry storm
    assert '"alert": true' in w.output() or "alert=True" in w.output()
