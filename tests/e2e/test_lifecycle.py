"""The lifecycle task end to end: two worker processes close idle conversations on
schedule and each closing message reaches the fake Twilio server once. On SQLite (database
and queue) and on arq (Redis) with PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from domain.conversation import Conversation, ConversationStatus
from domain.ids import new_ulid
from domain.message import DeliveryStatus, Direction, Message, MessageType
from tests.e2e.test_worker_process import OUR_NUMBER, World
from tests.fakes.fake_twilio import FakeTwilioServer

pytestmark = pytest.mark.e2e

CLOSING = "This chat is closed now. Write again any time!"
CONTACTS = [f"whatsapp:+55119888{n:05d}" for n in range(12)]


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        server.reply_status = "sent"
        yield server


@pytest.fixture(params=["sqlite", "arq+postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path,
          twilio: FakeTwilioServer) -> Iterator[World]:
    extra = {"ASSISTANT_CLOSING_MESSAGE": CLOSING, "CONVERSATION_IDLE_TIMEOUT_MINUTES": "15",
             "ASSISTANT_LIFECYCLE_INTERVAL_SECONDS": "1", "WORKER_CONCURRENCY": "4"}
    redis_url = None
    if request.param == "arq+postgres":
        redis_url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(redis_url).flushdb()
        extra |= {"DATABASE_BACKEND": "postgres",
                  "DATABASE_URL": request.getfixturevalue("postgres_database")}
    made = World(tmp_path, "arq" if redis_url else "sqlite", redis_url, twilio, **extra)
    try:
        yield made
    finally:
        made.kill_all()
        if redis_url:
            redis.Redis.from_url(redis_url).flushdb()


def store_conversations(world: World, minutes_ago: int) -> list[str]:
    """Conversations whose contact last wrote ``minutes_ago`` (inside the 24-hour window)."""
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    owner = world.settings.owner_account_sid
    ids = []

    async def go(container: Any) -> None:
        async with container[UnitOfWork] as uow:
            for contact in CONTACTS:
                c = Conversation(id=new_ulid(), owner_id=owner, contact=contact,
                                 channel=OUR_NUMBER, status=ConversationStatus.OPEN,
                                 created_at=at, updated_at=at, last_message_at=at)
                await uow.repository(ConversationRepository).create(c)
                await uow.repository(MessageRepository).add_if_new(Message(
                    id=new_ulid(), conversation_id=c.id, owner_id=owner,
                    direction=Direction.INBOUND, type=MessageType.TEXT, body="thanks",
                    from_address=contact, to_address=OUR_NUMBER,
                    status=DeliveryStatus.RECEIVED, created_at=at, updated_at=at,
                    provider_sid=f"SM{new_ulid()}"))
                ids.append(c.id)
            await uow.commit()

    world.run(go)
    return ids


def conversations(world: World) -> list[Conversation]:
    async def go(container: Any) -> list[Conversation]:
        async with container[UnitOfWork] as uow:
            return await uow.repository(ConversationRepository).find_by()

    result: list[Conversation] = world.run(go)
    return result


def test_two_workers_close_idle_conversations_and_send_each_closing_message_once(
    world: World, twilio: FakeTwilioServer
) -> None:
    idle = store_conversations(world, minutes_ago=20)
    world.start_worker()
    world.start_worker()
    try:
        twilio.wait_for_sends(len(CONTACTS), timeout=40)
    except TimeoutError:
        pytest.fail(f"closing messages missing\n{world.output()}")
    time.sleep(2.5)  # more runs of the task on both workers: none may send again

    assert sorted(s.to for s in twilio.sent) == sorted(CONTACTS), world.output()
    assert {s.body for s in twilio.sent} == {CLOSING}
    stored = {c.id: c for c in conversations(world)}
    assert all(stored[i].status is ConversationStatus.CLOSED for i in idle)
    assert {stored[i].closed_reason for i in idle} == {"idle"}


def test_a_conversation_still_active_is_left_open(
    world: World, twilio: FakeTwilioServer
) -> None:
    active = store_conversations(world, minutes_ago=5)
    world.start_worker()
    time.sleep(3)  # several runs of a 1 s task
    assert twilio.sent == []
    assert {c.status for c in conversations(world) if c.id in active} == {
        ConversationStatus.OPEN}
