"""A contact whose message failed as opted out or unreachable is not messaged again until
they write: queued messages fail before the provider is called."""

from __future__ import annotations

from datetime import timedelta

from application.errors import DeliveryFailed
from application.ports.message_repository import MessageRepository
from application.ports.message_sender import OutboundEnvelope, SendReceipt
from application.tasks import GenerateReplyPayload, SendMessagePayload
from application.use_cases.queue_outbound import OutboundRequest, QueueOutboundMessage
from application.use_cases.send_outbound import SendOutboundMessage
from domain.delivery_errors import Outcome
from domain.message import DeliveryStatus
from tests.unit.conftest import Fakes
from tests.unit.splitting import SPLITTER
from tests.unit.test_use_cases import CHANNEL, CONTACT, OWNER, inbound


class _Twilio:
    def __init__(self, refuse_first: bool) -> None:
        self.refuse_first = refuse_first
        self.taken: list[str] = []

    async def send(self, envelope: OutboundEnvelope) -> SendReceipt:
        if self.refuse_first:
            self.refuse_first = False
            raise DeliveryFailed("unsubscribed", retryable=False, error_code="21610",
                                 outcome=Outcome.OPTED_OUT)
        self.taken.append(envelope.body)
        return SendReceipt(f"SM{len(self.taken):032x}", DeliveryStatus.QUEUED)


async def test_queued_messages_to_an_opted_out_contact_fail_without_a_call(fakes: Fakes) -> None:
    first = await fakes.receive().execute(inbound())
    reply = await fakes.generate().execute(GenerateReplyPayload(first.message_id))
    queue_outbound = QueueOutboundMessage(fakes.uow(), fakes.queue, fakes.clock, fakes.ids,
                                          fakes.policy, SPLITTER)
    queued = await queue_outbound.execute(OutboundRequest(
        owner_id=OWNER, channel=CHANNEL, to=CONTACT, body="queued before the opt-out"))
    twilio = _Twilio(refuse_first=True)
    send = SendOutboundMessage(fakes.uow(), twilio, fakes.clock, SPLITTER)
    fakes.clock.advance(timedelta(seconds=1))
    assert await send.execute(SendMessagePayload(reply.id)) is DeliveryStatus.FAILED
    fakes.clock.advance(timedelta(seconds=1))
    assert await send.execute(SendMessagePayload(queued.message_id)) is DeliveryStatus.FAILED
    async with fakes.uow() as uow:
        blocked = await uow.repository(MessageRepository).get_by_id(queued.message_id)
    assert blocked is not None and blocked.error_code == "CONTACT_BLOCKED"
    assert twilio.taken == []

    # They write again: the reply to that goes out.
    fakes.clock.advance(timedelta(seconds=1))
    again = await fakes.receive().execute(inbound(sid="SM" + "b" * 32, body="back"))
    reply2 = await fakes.generate().execute(GenerateReplyPayload(again.message_id))
    assert await send.execute(SendMessagePayload(reply2.id)) is DeliveryStatus.SENT
    assert twilio.taken == ["Echo: back"]
