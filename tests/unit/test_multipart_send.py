"""Long replies: every part reaches the contact exactly once, in order, however often the
job runs again; a part whose outcome is unknown holds the rest."""

from __future__ import annotations

from datetime import timedelta
from types import TracebackType
from typing import Self

import pytest

from adapters.in_memory.unit_of_work import InMemoryUnitOfWork
from adapters.twilio.long_text import split_text
from application.channel_policy import ChannelPolicy
from application.errors import DeliveryFailed, StorageUnavailable
from application.ports.message_repository import MessageRepository
from application.ports.message_sender import OutboundEnvelope, SendReceipt
from application.tasks import GenerateReplyPayload, SendMessagePayload
from application.use_cases import send_outbound
from application.use_cases.send_outbound import SendOutboundMessage
from domain.delivery_errors import Outcome
from domain.message import DeliveryStatus, Message
from domain.outbound_parts import PartProgress
from tests.unit.conftest import Fakes
from tests.unit.splitting import SPLITTER
from tests.unit.test_use_cases import inbound

LONG = " ".join(f"Sentence number {n} says something." for n in range(110))  # ~3,900 chars


class _Twilio:
    """Records what it took; ``plan`` scripts the answer to the n-th call (0-based)."""

    def __init__(self, plan: dict[int, BaseException] | None = None) -> None:
        self.plan = plan or {}
        self.calls = 0
        self.taken: list[OutboundEnvelope] = []

    async def send(self, envelope: OutboundEnvelope) -> SendReceipt:
        call, self.calls = self.calls, self.calls + 1
        if call in self.plan:
            raise self.plan[call]
        self.taken.append(envelope)
        return SendReceipt(provider_sid=f"SM{len(self.taken):032x}", status=DeliveryStatus.QUEUED)


class _FlakyUnits(InMemoryUnitOfWork):
    """Raises ``StorageUnavailable`` when the n-th unit (1-based) is entered."""

    entered = 0

    def __init__(self, fakes: Fakes, fail_at: set[int]) -> None:
        super().__init__(fakes.store)
        self._fail_at = fail_at

    async def __aenter__(self) -> Self:
        type(self).entered += 1
        if type(self).entered in self._fail_at:
            raise StorageUnavailable("database went away")
        return await super().__aenter__()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await super().__aexit__(exc_type, exc, tb)


async def _long_reply(fakes: Fakes) -> Message:
    result = await fakes.receive().execute(inbound(body=LONG))
    return await fakes.generate().execute(GenerateReplyPayload(result.message_id))


async def _stored(fakes: Fakes, message_id: str) -> Message:
    async with fakes.uow() as uow:
        message = await uow.repository(MessageRepository).get_by_id(message_id)
    assert message is not None
    return message


async def test_a_long_reply_goes_out_in_order_in_parts_twilio_accepts(fakes: Fakes) -> None:
    reply = await _long_reply(fakes)
    twilio = _Twilio()
    status = await SendOutboundMessage(fakes.uow(), twilio, fakes.clock, SPLITTER).execute(
        SendMessagePayload(reply.id))
    assert status is DeliveryStatus.SENT
    bodies = [e.body for e in twilio.taken]
    assert len(bodies) == 3 and all(len(b) <= 1600 for b in bodies)
    assert "".join(bodies) == reply.body == "Echo: " + LONG
    stored = await _stored(fakes, reply.id)
    progress = PartProgress.from_metadata(stored.metadata)
    assert progress is not None and progress.done and progress.in_flight is None
    # The row carries the last part's sid: its callbacks tell when the whole reply arrived.
    assert stored.provider_sid == f"SM{3:032x}" == progress.sids[-1]


async def test_three_redeliveries_mid_way_still_send_each_part_once_in_order(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Storage down for longer than a run writes again: each failure ends the run.
    monkeypatch.setattr(send_outbound, "STORAGE_RETRY_DELAYS", ())
    reply = await _long_reply(fakes)
    parts = split_text(reply.body)
    # Run 1: part 1 goes out, then the database fails before part 2 is claimed.
    # Run 2: Twilio answers 503 to part 2 (the claim is released).
    # Run 3: part 2 goes out, then the database fails before part 3 is claimed.
    # Run 4: part 3 goes out.
    twilio = _Twilio({1: DeliveryFailed("503", retryable=True, error_code=None)})
    _FlakyUnits.entered = 0
    # Units per part: claim, record. Run 1 enters 1 (claim) 2 (record) 3 (claim: fails).
    units = _FlakyUnits(fakes, fail_at={3, 8})
    send = SendOutboundMessage(units, twilio, fakes.clock, SPLITTER)
    runs = 0
    while True:
        runs += 1
        try:
            status = await send.execute(SendMessagePayload(reply.id))
            break
        except (StorageUnavailable, DeliveryFailed):
            assert runs < 10
    assert runs == 4
    assert status is DeliveryStatus.SENT
    assert [e.body for e in twilio.taken] == parts
    # Runs after the last one find the reply sent and send nothing.
    await fakes.send().execute(SendMessagePayload(reply.id))
    await SendOutboundMessage(fakes.uow(), twilio, fakes.clock, SPLITTER).execute(
        SendMessagePayload(reply.id))
    assert len(twilio.taken) == 3 and fakes.sender.sent == []


class _LostAnswers(InMemoryUnitOfWork):
    """Commits, then raises ``StorageUnavailable`` on the n-th commit (1-based): the write
    landed but its answer was lost, as when the connection drops during COMMIT."""

    commits = 0

    def __init__(self, fakes: Fakes, lose: set[int]) -> None:
        super().__init__(fakes.store)
        self._lose = lose

    async def commit(self) -> None:
        await super().commit()
        type(self).commits += 1
        if type(self).commits in self._lose:
            raise StorageUnavailable("connection lost during COMMIT")


@pytest.mark.parametrize("lose", [{1}, {2}, {1, 2, 3, 4}], ids=["claim", "record", "every"])
async def test_a_write_whose_answer_was_lost_sends_each_part_once_in_the_same_run(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch, lose: set[int]
) -> None:
    """The claim committed but the run saw an error: it must not hold the message (its own
    claim, nothing sent yet), nor record a part twice."""
    monkeypatch.setattr(send_outbound, "STORAGE_RETRY_DELAYS", (0.0, 0.0, 0.0))
    reply = await _long_reply(fakes)
    twilio = _Twilio()
    _LostAnswers.commits = 0
    send = SendOutboundMessage(_LostAnswers(fakes, lose), twilio, fakes.clock, SPLITTER)
    assert await send.execute(SendMessagePayload(reply.id)) is DeliveryStatus.SENT
    assert [e.body for e in twilio.taken] == split_text(reply.body)
    progress = PartProgress.from_metadata((await _stored(fakes, reply.id)).metadata)
    assert progress is not None and progress.done and len(set(progress.sids)) == 3


async def test_another_run_still_takes_a_lost_claim_for_a_part_in_flight(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the run that claimed knows nothing was sent: a later run holds the message."""
    monkeypatch.setattr(send_outbound, "STORAGE_RETRY_DELAYS", ())
    reply = await _long_reply(fakes)
    twilio = _Twilio()
    _LostAnswers.commits = 0
    with pytest.raises(StorageUnavailable):
        await SendOutboundMessage(_LostAnswers(fakes, {1}), twilio, fakes.clock,
                                  SPLITTER).execute(SendMessagePayload(reply.id))
    status = await SendOutboundMessage(fakes.uow(), twilio, fakes.clock, SPLITTER).execute(
        SendMessagePayload(reply.id))
    assert status is DeliveryStatus.SENDING and twilio.taken == []


async def test_a_concurrent_run_sends_nothing_while_a_part_is_in_flight(fakes: Fakes) -> None:
    reply = await _long_reply(fakes)
    seen: list[DeliveryStatus] = []
    twilio = _Twilio()

    class _Racing:
        async def send(self, envelope: OutboundEnvelope) -> SendReceipt:
            if not seen:  # a redelivered job runs while the first part is on the wire
                again = SendOutboundMessage(fakes.uow(), twilio, fakes.clock, SPLITTER)
                seen.append(await again.execute(SendMessagePayload(reply.id)))
            return await twilio.send(envelope)

    await SendOutboundMessage(fakes.uow(), _Racing(), fakes.clock, SPLITTER).execute(
        SendMessagePayload(reply.id))
    assert seen == [DeliveryStatus.SENDING]
    assert [e.body for e in twilio.taken] == split_text(reply.body)


async def test_a_part_cut_off_during_its_call_holds_the_rest(fakes: Fakes) -> None:
    reply = await _long_reply(fakes)
    twilio = _Twilio({1: RuntimeError("the process died during the call")})
    with pytest.raises(RuntimeError):
        await SendOutboundMessage(fakes.uow(), twilio, fakes.clock, SPLITTER).execute(
            SendMessagePayload(reply.id))
    # Twilio may have taken part 2: sending it again could duplicate it.
    status = await SendOutboundMessage(fakes.uow(), twilio, fakes.clock, SPLITTER).execute(
        SendMessagePayload(reply.id))
    assert status is DeliveryStatus.SENDING and len(twilio.taken) == 1


async def test_a_permanent_refusal_stores_the_code_and_its_meaning(fakes: Fakes) -> None:
    reply = await _long_reply(fakes)
    twilio = _Twilio({0: DeliveryFailed("opted out", retryable=False, error_code="21610",
                                        outcome=Outcome.OPTED_OUT)})
    status = await SendOutboundMessage(fakes.uow(), twilio, fakes.clock, SPLITTER).execute(
        SendMessagePayload(reply.id))
    assert status is DeliveryStatus.FAILED
    stored = await _stored(fakes, reply.id)
    assert stored.error_code == "21610"
    assert stored.metadata["error"]["outcome"] == "opted_out"


async def test_outside_the_window_free_text_is_refused_before_twilio(fakes: Fakes) -> None:
    reply = await _long_reply(fakes)
    fakes.clock.advance(timedelta(hours=25))
    twilio = _Twilio()
    status = await SendOutboundMessage(fakes.uow(), twilio, fakes.clock, SPLITTER).execute(
        SendMessagePayload(reply.id))
    assert status is DeliveryStatus.FAILED and twilio.calls == 0
    assert (await _stored(fakes, reply.id)).error_code == "WINDOW_CLOSED"


async def test_a_reply_past_the_window_uses_the_fallback_template(fakes: Fakes) -> None:
    reply = await _long_reply(fakes)
    fakes.clock.advance(timedelta(hours=25))
    twilio = _Twilio()
    policy = ChannelPolicy(fallback_content_sid="HX" + "b" * 32)
    status = await SendOutboundMessage(fakes.uow(), twilio, fakes.clock, SPLITTER, policy).execute(
        SendMessagePayload(reply.id))
    assert status is DeliveryStatus.SENT
    [sent] = twilio.taken
    assert sent.content_sid == "HX" + "b" * 32
    assert (await _stored(fakes, reply.id)).metadata["template"]["fallback"] is True


async def test_a_responder_can_attach_media_sent_with_the_first_part(fakes: Fakes) -> None:
    from collections.abc import Sequence

    from application.ports.responder import Reply
    from domain.conversation import Conversation

    class _WithPicture:
        async def reply(self, conversation: Conversation, message: Message,
                        history: Sequence[Message], profile: object = None,
                        images: object = ()) -> Reply:
            return Reply("Here it is. " + LONG, ("https://example.com/map.png",))

    fakes.responder = _WithPicture()  # type: ignore[assignment]
    result = await fakes.receive().execute(inbound(body="where?"))
    reply = await fakes.generate().execute(GenerateReplyPayload(result.message_id))
    twilio = _Twilio()
    await SendOutboundMessage(fakes.uow(), twilio, fakes.clock, SPLITTER).execute(
        SendMessagePayload(reply.id))
    assert [e.media_urls for e in twilio.taken] == [("https://example.com/map.png",), (), ()]
    assert (await _stored(fakes, reply.id)).type.value == "media"
