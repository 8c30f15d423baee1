"""Use cases on in-memory fakes: the business rules, with no I/O."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from application.errors import DeliveryFailed, DeliveryUncertain, PermanentJobError
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.message_sender import OutboundEnvelope, SendReceipt
from application.tasks import GENERATE_REPLY, SEND_MESSAGE, GenerateReplyPayload, SendMessagePayload
from application.use_cases.receive_inbound import InboundMessage
from application.use_cases.record_delivery_status import StatusUpdate
from application.use_cases.send_outbound import SendOutboundMessage
from domain.conversation import ConversationStatus
from domain.errors import InvalidWhatsAppAddress
from domain.message import DeliveryStatus, Direction
from tests.unit.conftest import Fakes
from tests.unit.splitting import SPLITTER

OWNER = "AC" + "1" * 32
CONTACT = "whatsapp:+5511999990001"
CHANNEL = "whatsapp:+14155238886"


def inbound(
    sid: str = "SM" + "a" * 32, body: str = "hello", contact: str = CONTACT
) -> InboundMessage:
    return InboundMessage(message_sid=sid, owner_id=OWNER, from_address=contact,
                          to_address=CHANNEL, body=body, extra={"WaId": "5511999990001"})


async def drain(fakes: Fakes) -> list[str]:
    """Run queued jobs through their use cases until the queue is empty; return task names."""
    ran = []
    while jobs := await fakes.queue.receive(10, 0):
        for job in jobs:
            if job.task == GENERATE_REPLY:
                await fakes.generate().execute(GenerateReplyPayload.from_payload(job.payload))
            elif job.task == SEND_MESSAGE:
                await fakes.send().execute(SendMessagePayload.from_payload(job.payload))
            await fakes.queue.ack(job)
            ran.append(job.task)
    return ran


async def test_new_inbound_message_creates_a_conversation_and_a_reply_job(fakes: Fakes) -> None:
    result = await fakes.receive().execute(inbound())
    assert not result.duplicate and result.reply_queued
    async with fakes.uow() as uow:
        conversation = await uow.repository(ConversationRepository).get_by_id(
            result.conversation_id
        )
        message = await uow.repository(MessageRepository).get_by_id(result.message_id)
    assert conversation is not None and conversation.status is ConversationStatus.OPEN
    assert conversation.contact == CONTACT and conversation.owner_id == OWNER
    assert message is not None and message.direction is Direction.INBOUND
    assert message.status is DeliveryStatus.RECEIVED and message.body == "hello"
    assert message.metadata["twilio"] == {"WaId": "5511999990001"}
    jobs = await fakes.queue.receive(10, 0)
    assert [(j.task, dict(j.payload)) for j in jobs] == [
        (GENERATE_REPLY, {"message_id": result.message_id})
    ]


async def test_same_message_sid_twice_stores_one_message_and_queues_one_job(fakes: Fakes) -> None:
    first = await fakes.receive().execute(inbound())
    second = await fakes.receive().execute(inbound())
    assert second.duplicate and second.message_id == first.message_id
    async with fakes.uow() as uow:
        assert await uow.repository(MessageRepository).count() == 1
    assert len(await fakes.queue.receive(10, 0)) == 1


async def test_overlapping_retries_of_one_message_store_it_once(fakes: Fakes) -> None:
    results = await asyncio.gather(*(fakes.receive().execute(inbound()) for _ in range(8)))
    assert len({r.message_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert await drain(fakes) == [GENERATE_REPLY, SEND_MESSAGE]
    assert len(fakes.sender.sent) == 1


async def test_full_flow_sends_the_echo_reply_to_the_contact(fakes: Fakes) -> None:
    result = await fakes.receive().execute(inbound(body="  olá 👋 "))
    await drain(fakes)
    [envelope] = fakes.sender.sent
    assert envelope.to_address == CONTACT and envelope.from_address == CHANNEL
    assert envelope.body == "Echo: olá 👋"
    async with fakes.uow() as uow:
        reply = await uow.repository(MessageRepository).get_reply_to(result.message_id)
    assert reply is not None and reply.status is DeliveryStatus.SENT
    assert reply.provider_sid is not None and reply.provider_sid.startswith("SM")


async def test_redelivered_jobs_never_send_a_second_reply(fakes: Fakes) -> None:
    result = await fakes.receive().execute(inbound())
    payload = GenerateReplyPayload(result.message_id)
    first = await fakes.generate().execute(payload)
    again = await fakes.generate().execute(payload)
    assert again.id == first.id
    await fakes.send().execute(SendMessagePayload(first.id))
    await fakes.send().execute(SendMessagePayload(first.id))
    assert len(fakes.sender.sent) == 1


async def test_status_callbacks_never_move_status_backwards(fakes: Fakes) -> None:
    result = await fakes.receive().execute(inbound())
    await drain(fakes)
    async with fakes.uow() as uow:
        reply = await uow.repository(MessageRepository).get_reply_to(result.message_id)
    assert reply is not None and reply.provider_sid
    record = fakes.record_status()
    assert await record.execute(StatusUpdate(reply.provider_sid, "delivered"))
    assert not await record.execute(StatusUpdate(reply.provider_sid, "sent"))
    assert not await record.execute(StatusUpdate(reply.provider_sid, "failed", "30003"))
    assert await record.execute(StatusUpdate(reply.provider_sid, "read"))
    assert not await record.execute(StatusUpdate(reply.provider_sid, "delivered"))
    assert not await record.execute(StatusUpdate(reply.provider_sid, "brand-new-status"))
    assert not await record.execute(StatusUpdate("SM" + "f" * 32, "delivered"))
    async with fakes.uow() as uow:
        stored = await uow.repository(MessageRepository).get_by_id(reply.id)
    assert stored is not None and stored.status is DeliveryStatus.READ


async def test_racing_status_callbacks_end_at_the_most_advanced(fakes: Fakes) -> None:
    await fakes.receive().execute(inbound())
    await drain(fakes)
    async with fakes.uow() as uow:
        [reply] = [m for m in await uow.repository(MessageRepository).find_by(
            direction=Direction.OUTBOUND
        )]
    sid = reply.provider_sid
    assert sid is not None
    updates = ["sent", "read", "delivered", "sent", "delivered"]
    await asyncio.gather(*(fakes.record_status().execute(StatusUpdate(sid, s)) for s in updates))
    async with fakes.uow() as uow:
        stored = await uow.repository(MessageRepository).get_by_id(reply.id)
    assert stored is not None and stored.status is DeliveryStatus.READ


async def test_failed_status_keeps_its_error_code(fakes: Fakes) -> None:
    await fakes.receive().execute(inbound())
    await drain(fakes)
    async with fakes.uow() as uow:
        [reply] = await uow.repository(MessageRepository).find_by(direction=Direction.OUTBOUND)
    assert reply.provider_sid
    assert await fakes.record_status().execute(StatusUpdate(reply.provider_sid, "undelivered",
                                                            "63016"))
    async with fakes.uow() as uow:
        stored = await uow.repository(MessageRepository).get_by_id(reply.id)
    assert stored is not None and stored.status is DeliveryStatus.UNDELIVERED
    assert stored.error_code == "63016"


async def test_malformed_sender_address_stores_nothing(fakes: Fakes) -> None:
    with pytest.raises(InvalidWhatsAppAddress):
        await fakes.receive().execute(inbound(contact="+5511999990001"))
    async with fakes.uow() as uow:
        assert await uow.repository(MessageRepository).count() == 0
        assert await uow.repository(ConversationRepository).count() == 0
    assert await fakes.queue.receive(10, 0) == []


async def test_messages_from_one_contact_share_the_open_conversation(fakes: Fakes) -> None:
    a = await fakes.receive().execute(inbound("SM" + "1" * 32, "one"))
    b = await fakes.receive().execute(inbound("SM" + "2" * 32, "two"))
    c = await fakes.receive().execute(inbound("SM" + "3" * 32, "x",
                                              contact="whatsapp:+5511999990002"))
    assert a.conversation_id == b.conversation_id != c.conversation_id


async def test_idle_conversation_is_closed_and_a_new_one_opened(fakes: Fakes) -> None:
    a = await fakes.receive().execute(inbound("SM" + "1" * 32))
    fakes.clock.advance(fakes.policy.idle_timeout + timedelta(seconds=1))
    b = await fakes.receive().execute(inbound("SM" + "2" * 32))
    assert a.conversation_id != b.conversation_id
    async with fakes.uow() as uow:
        old = await uow.repository(ConversationRepository).get_by_id(a.conversation_id)
    assert old is not None and old.status is ConversationStatus.CLOSED


async def test_closure_keyword_closes_the_conversation_but_still_gets_a_reply(fakes: Fakes) -> None:
    result = await fakes.receive().execute(inbound(body=" Bye "))
    async with fakes.uow() as uow:
        conversation = await uow.repository(ConversationRepository).get_by_id(
            result.conversation_id
        )
    assert conversation is not None and conversation.status is ConversationStatus.CLOSED
    assert result.reply_queued
    nxt = await fakes.receive().execute(inbound("SM" + "9" * 32, "hi again"))
    assert nxt.conversation_id != result.conversation_id


class _FlakySender:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    async def send(self, envelope: OutboundEnvelope) -> SendReceipt:
        self.calls += 1
        raise self.error


async def _pending_reply(fakes: Fakes) -> str:
    result = await fakes.receive().execute(inbound())
    reply = await fakes.generate().execute(GenerateReplyPayload(result.message_id))
    return reply.id


async def _status(fakes: Fakes, message_id: str) -> DeliveryStatus:
    async with fakes.uow() as uow:
        message = await uow.repository(MessageRepository).get_by_id(message_id)
    assert message is not None
    return message.status


async def test_retryable_send_failure_releases_the_claim_for_a_retry(fakes: Fakes) -> None:
    reply_id = await _pending_reply(fakes)
    flaky = _FlakySender(DeliveryFailed("429", retryable=True, error_code="20429"))
    with pytest.raises(DeliveryFailed):
        await SendOutboundMessage(fakes.uow(), flaky, fakes.clock, SPLITTER).execute(
            SendMessagePayload(reply_id))
    assert await _status(fakes, reply_id) is DeliveryStatus.PENDING
    await fakes.send().execute(SendMessagePayload(reply_id))
    assert len(fakes.sender.sent) == 1


async def test_permanent_send_failure_marks_the_message_failed(fakes: Fakes) -> None:
    reply_id = await _pending_reply(fakes)
    refused = _FlakySender(DeliveryFailed("bad number", retryable=False, error_code="21211"))
    status = await SendOutboundMessage(fakes.uow(), refused, fakes.clock, SPLITTER).execute(
        SendMessagePayload(reply_id))
    assert status is DeliveryStatus.FAILED
    assert await _status(fakes, reply_id) is DeliveryStatus.FAILED
    await fakes.send().execute(SendMessagePayload(reply_id))
    assert fakes.sender.sent == []


async def test_uncertain_send_is_never_retried(fakes: Fakes) -> None:
    reply_id = await _pending_reply(fakes)
    uncertain = _FlakySender(DeliveryUncertain("read timeout"))
    await SendOutboundMessage(fakes.uow(), uncertain, fakes.clock, SPLITTER).execute(
        SendMessagePayload(reply_id))
    await fakes.send().execute(SendMessagePayload(reply_id))
    assert fakes.sender.sent == [] and uncertain.calls == 1
    assert await _status(fakes, reply_id) is DeliveryStatus.SENDING


async def test_jobs_for_missing_messages_fail_permanently(fakes: Fakes) -> None:
    with pytest.raises(PermanentJobError):
        await fakes.generate().execute(GenerateReplyPayload("01J0000000000000000000000"))
    with pytest.raises(PermanentJobError):
        await fakes.send().execute(SendMessagePayload("01J0000000000000000000000"))
    with pytest.raises(PermanentJobError):
        GenerateReplyPayload.from_payload({"message": 1})
