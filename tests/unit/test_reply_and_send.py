"""GenerateReply with ``send_now`` (as the worker wires it): reply and send in one job."""

from __future__ import annotations

from application.errors import DeliveryFailed
from application.ports.message_repository import MessageRepository
from application.ports.message_sender import OutboundEnvelope, SendReceipt
from application.tasks import SEND_MESSAGE, GenerateReplyPayload, SendMessagePayload
from application.use_cases.generate_reply import GenerateReply
from application.use_cases.send_outbound import SendOutboundMessage
from domain.message import DeliveryStatus
from tests.unit.conftest import Fakes
from tests.unit.splitting import SPLITTER
from tests.unit.test_use_cases import inbound


class FlakySender:
    """Refuses the first ``failures`` sends as Twilio does under load (429), then takes them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[OutboundEnvelope] = []

    async def send(self, envelope: OutboundEnvelope) -> SendReceipt:
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryFailed("Twilio answered 429", retryable=True, error_code="20429")
        self.sent.append(envelope)
        return SendReceipt(provider_sid=f"SM{len(self.sent):032x}", status=DeliveryStatus.QUEUED)


def replying(fakes: Fakes, sender: object | None = None) -> GenerateReply:
    send = SendOutboundMessage(fakes.uow(), sender or fakes.sender, fakes.clock, SPLITTER)  # type: ignore[arg-type]
    return GenerateReply(fakes.uow(), fakes.responder, fakes.queue, fakes.clock, fakes.ids,
                         fakes.assistant, send_now=send)


async def _jobs(fakes: Fakes) -> list[str]:
    return [job.task for job in await fakes.queue.receive(10, 0)]


async def test_the_reply_is_sent_in_the_same_job_and_no_send_job_is_queued(
    fakes: Fakes,
) -> None:
    result = await fakes.receive().execute(inbound())
    await fakes.queue.receive(10, 0)  # the generate_reply job this run stands for

    reply = await replying(fakes).execute(GenerateReplyPayload(result.message_id))

    [envelope] = fakes.sender.sent
    assert envelope.body == "Echo: hello"
    async with fakes.uow() as uow:
        stored = await uow.repository(MessageRepository).get_by_id(reply.id)
    assert stored is not None and stored.status is DeliveryStatus.SENT
    assert await _jobs(fakes) == []


async def test_a_redelivered_job_sends_nothing_twice(fakes: Fakes) -> None:
    result = await fakes.receive().execute(inbound())
    await fakes.queue.receive(10, 0)
    payload = GenerateReplyPayload(result.message_id)
    await replying(fakes).execute(payload)
    await replying(fakes).execute(payload)  # delivered again after it sent
    assert len(fakes.sender.sent) == 1
    assert await _jobs(fakes) == []


async def test_a_refused_send_is_handed_to_a_send_job_that_retries_it(fakes: Fakes) -> None:
    result = await fakes.receive().execute(inbound())
    await fakes.queue.receive(10, 0)
    sender = FlakySender(failures=1)

    reply = await replying(fakes, sender).execute(GenerateReplyPayload(result.message_id))

    assert sender.sent == []
    async with fakes.uow() as uow:
        stored = await uow.repository(MessageRepository).get_by_id(reply.id)
    assert stored is not None and stored.status is DeliveryStatus.PENDING  # claim released
    [job] = await fakes.queue.receive(10, 0)
    assert job.task == SEND_MESSAGE
    await SendOutboundMessage(fakes.uow(), sender, fakes.clock, SPLITTER).execute(  # type: ignore[arg-type]
        SendMessagePayload.from_payload(job.payload))
    assert [e.body for e in sender.sent] == ["Echo: hello"]
