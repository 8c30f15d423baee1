"""Handoff: a person holds the conversation, the bot neither answers nor sends there."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.errors import ConcurrencyError, NotFound
from application.policy import HandoffPolicy
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.responder import ResponderFailed
from application.tasks import GenerateReplyPayload, SendMessagePayload
from application.use_cases.generate_reply import GenerateReply
from application.use_cases.handoff import (
    HandOffConversation,
    HandoffRequest,
    ReleaseConversation,
    ReleaseRequest,
)
from application.use_cases.queue_outbound import OutboundRequest, QueueOutboundMessage
from application.use_cases.send_outbound import JustStored
from domain.conversation import ANY_AGENT, Conversation
from domain.message import DeliveryStatus, Message
from tests.unit.conftest import Fakes
from tests.unit.splitting import SPLITTER
from tests.unit.test_reply_failures import ScriptedResponder
from tests.unit.test_use_cases import CHANNEL, CONTACT, OWNER, inbound

POLICY = HandoffPolicy(keywords=frozenset({"human"}), timeout=timedelta(minutes=30))


def generating(fakes: Fakes) -> GenerateReply:
    return GenerateReply(fakes.uow(), fakes.responder, fakes.queue, fakes.clock, fakes.ids,
                         fakes.assistant, handoff=POLICY)


async def receive(fakes: Fakes, n: int, body: str = "hello") -> str:
    result = await fakes.receive().execute(inbound(sid=f"SM{n:032x}", body=body))
    await fakes.queue.receive(10, 0)  # the generate_reply job this test runs by hand
    return result.message_id


async def answer(fakes: Fakes, n: int, body: str = "hello") -> Message:
    return await generating(fakes).execute(GenerateReplyPayload(await receive(fakes, n, body)))


async def conversation(fakes: Fakes) -> Conversation:
    async with fakes.uow() as uow:
        found = await uow.repository(ConversationRepository).get_open(OWNER, CONTACT)
    assert found is not None
    return found


async def hand_off(fakes: Fakes, agent: str = "agent-1", minutes: int | None = None) -> None:
    c = await conversation(fakes)
    await HandOffConversation(fakes.uow(), fakes.clock, POLICY).execute(
        HandoffRequest(OWNER, c.id, agent, minutes))


async def stored(fakes: Fakes, message_id: str) -> Message:
    async with fakes.uow() as uow:
        found = await uow.repository(MessageRepository).get_by_id(message_id)
    assert found is not None
    return found


async def test_the_keyword_hands_off_and_nothing_is_answered_until_released(
    fakes: Fakes,
) -> None:
    first = await answer(fakes, 1)
    assert first.status is DeliveryStatus.PENDING and first.body == "Echo: hello"

    asked = await answer(fakes, 2, "  HUMAN ")
    assert asked.status is DeliveryStatus.CANCELED
    assert asked.metadata == {"skipped": "asked_for_person"}
    held = await conversation(fakes)
    assert held.holder == ANY_AGENT and held.needs_person
    assert held.held_until == fakes.clock.now() + timedelta(minutes=30)

    quiet = await answer(fakes, 3, "anyone?")
    assert quiet.metadata == {"skipped": "handed_off"}
    # A redelivered job finds the skipped reply and changes nothing.
    again = await generating(fakes).execute(GenerateReplyPayload(quiet.reply_to_id or ""))
    assert again.id == quiet.id

    c = await conversation(fakes)
    released = await ReleaseConversation(fakes.uow(), fakes.clock).execute(
        ReleaseRequest(OWNER, c.id))
    assert released.holder is None and not released.needs_person
    resumed = await answer(fakes, 4, "back?")
    assert resumed.status is DeliveryStatus.PENDING and resumed.body == "Echo: back?"


async def test_a_hold_times_out_back_to_the_bot(fakes: Fakes) -> None:
    await receive(fakes, 1)
    await hand_off(fakes, minutes=5)
    assert (await answer(fakes, 2)).status is DeliveryStatus.CANCELED
    fakes.clock.advance(timedelta(minutes=5))
    assert (await answer(fakes, 3)).status is DeliveryStatus.PENDING


async def test_a_reply_stored_before_the_handoff_is_never_sent_after_it(fakes: Fakes) -> None:
    # The race: the reply was generated while the bot held the chat; the handoff lands
    # between storing it and claiming its send.
    reply = await answer(fakes, 1)
    await hand_off(fakes)

    status = await fakes.send().execute(SendMessagePayload(reply.id))

    assert status is DeliveryStatus.CANCELED
    assert fakes.sender.sent == []
    assert (await stored(fakes, reply.id)).error_code == "HANDED_OFF"


async def test_the_send_claim_conflicts_with_a_handoff_it_did_not_see(fakes: Fakes) -> None:
    # The claim rewrites the conversation at the version it read: a handoff committed in
    # between makes the claim's unit fail, and its retry sees the handoff.
    reply = await answer(fakes, 1)
    before = await conversation(fakes)
    await hand_off(fakes)
    async with fakes.uow() as uow:
        with pytest.raises(ConcurrencyError):
            await uow.repository(ConversationRepository).update(before)
    assert await fakes.send().execute(SendMessagePayload(reply.id)) is DeliveryStatus.CANCELED


async def test_rows_the_reply_job_read_before_the_handoff_are_not_trusted(fakes: Fakes) -> None:
    # The reply job hands the send the reply and conversation it holds, to save reads: a
    # handoff since makes the claim's rewrite of that conversation fail, and the claim
    # runs again on fresh rows.
    reply = await answer(fakes, 1)
    before = await conversation(fakes)
    await hand_off(fakes)

    status = await fakes.send().execute(SendMessagePayload(reply.id),
                                        JustStored(reply, before, reply.created_at))

    assert status is DeliveryStatus.CANCELED
    assert fakes.sender.sent == []


async def test_an_agent_message_goes_out_while_the_conversation_is_held(fakes: Fakes) -> None:
    await receive(fakes, 1)
    await hand_off(fakes)
    queue_outbound = QueueOutboundMessage(fakes.uow(), fakes.queue, fakes.clock, fakes.ids,
                                          fakes.policy, SPLITTER)
    queued = await queue_outbound.execute(
        OutboundRequest(owner_id=OWNER, channel=CHANNEL, to=CONTACT, body="Hi, Ana here"))
    status = await fakes.send().execute(SendMessagePayload(queued.message_id))
    assert status is not DeliveryStatus.CANCELED
    assert [e.body for e in fakes.sender.sent] == ["Hi, Ana here"]


async def test_a_bot_reply_goes_out_while_nobody_holds_the_conversation(fakes: Fakes) -> None:
    reply = await answer(fakes, 1)
    assert await fakes.send().execute(SendMessagePayload(reply.id)) is not DeliveryStatus.CANCELED
    assert [e.body for e in fakes.sender.sent] == ["Echo: hello"]


async def test_another_owners_conversation_cannot_be_handed_off(fakes: Fakes) -> None:
    await receive(fakes, 1)
    c = await conversation(fakes)
    with pytest.raises(NotFound):
        await HandOffConversation(fakes.uow(), fakes.clock, POLICY).execute(
            HandoffRequest("AC" + "9" * 32, c.id, "agent-1"))
    with pytest.raises(NotFound):
        await ReleaseConversation(fakes.uow(), fakes.clock).execute(
            ReleaseRequest("AC" + "9" * 32, c.id))


async def test_the_fallback_flags_the_conversation_for_a_person(fakes: Fakes) -> None:
    message_id = await receive(fakes, 1)
    assert not (await conversation(fakes)).needs_person
    responder = ScriptedResponder(ResponderFailed("400", retryable=False, error_code="bad"))
    generate = GenerateReply(fakes.uow(), responder, fakes.queue, fakes.clock, fakes.ids,
                             fakes.assistant)
    reply = await generate.execute(GenerateReplyPayload(message_id))
    assert reply.metadata["needs_person"] is True
    assert (await conversation(fakes)).needs_person
