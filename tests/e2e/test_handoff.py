"""Handoff end to end: a worker process, the fake LLM and fake Twilio over real sockets.

A handoff stops the bot's replies at once, a release resumes them, and a reply the model
was still writing when the handoff was recorded never reaches Twilio.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from application.use_cases.handoff import (
    HandOffConversation,
    HandoffRequest,
    ReleaseConversation,
    ReleaseRequest,
)
from application.use_cases.receive_inbound import InboundMessage, ReceiveInboundMessage
from domain.message import Message
from tests.e2e.model_world import BACKENDS, model_world
from tests.e2e.test_worker_process import CONTACT, OUR_NUMBER, World
from tests.fakes.fake_llm import FakeLLMServer
from tests.fakes.fake_twilio import FakeTwilioServer

pytestmark = pytest.mark.e2e


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path, llm: FakeLLMServer,
          twilio: FakeTwilioServer) -> Iterator[World]:
    yield from model_world(request, tmp_path, llm, twilio, ASSISTANT_HANDOFF_KEYWORDS="human")


class Chat:
    def __init__(self, world: World) -> None:
        self.world = world
        self.count = 0

    def say(self, text: str) -> str:
        self.count += 1
        sid = f"SM{self.count:032x}"
        owner = self.world.settings.owner_account_sid

        async def go(container: Any) -> None:
            await container[ReceiveInboundMessage].execute(InboundMessage(
                message_sid=sid, owner_id=owner, from_address=CONTACT, to_address=OUR_NUMBER,
                body=text))

        self.world.run(go)
        return sid

    def reply(self, sid: str) -> Message | None:
        async def go(container: Any) -> Message | None:
            async with container[UnitOfWork] as uow:
                inbound = await uow.repository(MessageRepository).get_by_provider_sid(sid)
                return await uow.repository(MessageRepository).get_reply_to(inbound.id)

        result: Message | None = self.world.run(go)
        return result

    def wait_reply(self, sid: str, timeout: float = 20) -> Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.reply(sid)
            if reply is not None and reply.status.value not in ("pending", "sending"):
                return reply
            time.sleep(0.1)
        pytest.fail(f"no settled reply to {sid}\n{self.world.output()}")

    def hand_off(self, agent: str) -> None:
        owner = self.world.settings.owner_account_sid

        async def go(container: Any) -> None:
            async with container[UnitOfWork] as uow:
                c = await uow.repository(ConversationRepository).get_open(owner, CONTACT)
            await container[HandOffConversation].execute(HandoffRequest(owner, c.id, agent))

        self.world.run(go)

    def release(self) -> None:
        owner = self.world.settings.owner_account_sid

        async def go(container: Any) -> None:
            async with container[UnitOfWork] as uow:
                c = await uow.repository(ConversationRepository).get_open(owner, CONTACT)
            await container[ReleaseConversation].execute(ReleaseRequest(owner, c.id))

        self.world.run(go)


def test_handoff_stops_replies_within_the_second_and_release_resumes_them(
    world: World, llm: FakeLLMServer, twilio: FakeTwilioServer
) -> None:
    chat = Chat(world)
    assert chat.wait_reply(chat.say("hi")).body == "LLM: hi"
    twilio.wait_for_sends(1, timeout=10)

    chat.hand_off("agent-ana")
    # The very next message, right after the handoff was recorded, is not answered.
    skipped = chat.wait_reply(chat.say("are you a bot?"))
    assert skipped.metadata.get("skipped") == "handed_off"
    assert llm.attempts == 1  # the model was not even asked

    chat.release()
    assert chat.wait_reply(chat.say("back?")).body == "LLM: back?"
    twilio.wait_for_sends(2, timeout=10)
    time.sleep(0.5)
    assert [s.body for s in twilio.sent] == ["LLM: hi", "LLM: back?"]


def test_a_reply_in_flight_when_the_handoff_lands_never_reaches_twilio(
    world: World, llm: FakeLLMServer, twilio: FakeTwilioServer
) -> None:
    chat = Chat(world)
    llm.delay_seconds = 1.5
    sid = chat.say("question")
    deadline = time.monotonic() + 20
    while llm.attempts == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert llm.attempts == 1, world.output()
    chat.hand_off("agent-ana")  # while the model is still writing its answer

    reply = chat.wait_reply(sid)
    assert reply.body == "LLM: question"
    assert (reply.status.value, reply.error_code) == ("canceled", "HANDED_OFF")
    time.sleep(0.5)
    assert twilio.sent == [], world.output()


def test_the_contact_keyword_hands_off(world: World, twilio: FakeTwilioServer) -> None:
    chat = Chat(world)
    skipped = chat.wait_reply(chat.say("Human"))
    assert skipped.metadata.get("skipped") == "asked_for_person"
    assert chat.wait_reply(chat.say("hello?")).metadata.get("skipped") == "handed_off"
    time.sleep(0.5)
    assert twilio.sent == []
