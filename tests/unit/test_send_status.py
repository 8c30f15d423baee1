"""A reply Twilio accepted (a sid came back) reads ``sent``, never stays ``sending``."""

from __future__ import annotations

import pytest

from application.ports.message_repository import MessageRepository
from application.ports.message_sender import OutboundEnvelope, SendReceipt
from application.tasks import GenerateReplyPayload, SendMessagePayload
from application.use_cases.record_delivery_status import StatusUpdate
from application.use_cases.send_outbound import SendOutboundMessage
from domain.message import DeliveryStatus
from tests.unit.conftest import Fakes
from tests.unit.splitting import SPLITTER
from tests.unit.test_use_cases import inbound


class _Answering:
    def __init__(self, status: DeliveryStatus) -> None:
        self.status = status

    async def send(self, envelope: OutboundEnvelope) -> SendReceipt:
        return SendReceipt(provider_sid="SM" + "7" * 32, status=self.status)


async def _reply(fakes: Fakes) -> str:
    result = await fakes.receive().execute(inbound())
    return (await fakes.generate().execute(GenerateReplyPayload(result.message_id))).id


async def _stored(fakes: Fakes, message_id: str) -> DeliveryStatus:
    async with fakes.uow() as uow:
        message = await uow.repository(MessageRepository).get_by_id(message_id)
    assert message is not None
    return message.status


@pytest.mark.parametrize(("answered", "stored"), [
    (DeliveryStatus.QUEUED, DeliveryStatus.SENT),
    (DeliveryStatus.ACCEPTED, DeliveryStatus.SENT),
    (DeliveryStatus.SENDING, DeliveryStatus.SENT),
    (DeliveryStatus.SENT, DeliveryStatus.SENT),
    (DeliveryStatus.DELIVERED, DeliveryStatus.DELIVERED),
    (DeliveryStatus.FAILED, DeliveryStatus.FAILED),
])
async def test_an_accepted_send_is_at_least_sent(
    fakes: Fakes, answered: DeliveryStatus, stored: DeliveryStatus
) -> None:
    reply_id = await _reply(fakes)
    send = SendOutboundMessage(fakes.uow(), _Answering(answered), fakes.clock, SPLITTER)
    status = await send.execute(SendMessagePayload(reply_id))
    assert status is stored
    assert await _stored(fakes, reply_id) is stored


async def test_a_callback_that_raced_ahead_is_not_undone(fakes: Fakes) -> None:
    reply_id = await _reply(fakes)
    sid = "SM" + "7" * 32

    class _CallbackFirst:
        async def send(self, envelope: OutboundEnvelope) -> SendReceipt:
            # Twilio's "delivered" callback lands before its 201 is processed here.
            async with fakes.uow() as uow:
                await uow.repository(MessageRepository).compare_and_set_status(
                    reply_id, {DeliveryStatus.SENDING}, DeliveryStatus.DELIVERED,
                    fakes.clock.now(), provider_sid=sid)
                await uow.commit()
            return SendReceipt(provider_sid=sid, status=DeliveryStatus.QUEUED)

    await SendOutboundMessage(fakes.uow(), _CallbackFirst(), fakes.clock, SPLITTER).execute(
        SendMessagePayload(reply_id))
    assert await _stored(fakes, reply_id) is DeliveryStatus.DELIVERED
    # A late "sent" callback cannot move it back either.
    await fakes.record_status().execute(StatusUpdate(sid, "sent"))
    assert await _stored(fakes, reply_id) is DeliveryStatus.DELIVERED
