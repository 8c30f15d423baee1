"""GenerateReply when the responder fails: retry while it may help, else the fallback, once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from adapters.system.ids import UlidGenerator
from application.attempt import running_attempt
from application.policy import AssistantPolicy
from application.ports.message_repository import MessageRepository
from application.ports.responder import ResponderFailed
from application.tasks import GenerateReplyPayload
from application.use_cases.generate_reply import GenerateReply
from application.use_cases.send_outbound import SendOutboundMessage
from domain.conversation import Conversation
from domain.message import DeliveryStatus, Message
from tests.unit.conftest import Fakes
from tests.unit.splitting import SPLITTER
from tests.unit.test_use_cases import inbound

FALLBACK = "Sorry, a person will answer you."


class ScriptedResponder:
    """Raises the scripted failures in order, then answers; records what it was given."""

    def __init__(self, *failures: ResponderFailed) -> None:
        self.failures = list(failures)
        self.calls: list[list[str]] = []

    async def reply(
        self, conversation: Conversation, message: Message, history: Sequence[Message],
        profile: object = None, images: object = (),
    ) -> str:
        self.calls.append([m.body for m in history])
        if self.failures:
            raise self.failures.pop(0)
        return f"model: {message.body}"


class OrderedIds(UlidGenerator):
    """Ids in creation order (ULIDs made in the same millisecond need not be)."""

    def __init__(self) -> None:
        self.count = 0

    def new_id(self) -> str:
        self.count += 1
        return f"01{self.count:024d}"


def generating(fakes: Fakes, responder: ScriptedResponder, **policy: int) -> GenerateReply:
    send = SendOutboundMessage(fakes.uow(), fakes.sender, fakes.clock, SPLITTER)
    return GenerateReply(fakes.uow(), responder, fakes.queue, fakes.clock, fakes.ids,
                         AssistantPolicy(fallback_message=FALLBACK, **policy), send_now=send)


def transient() -> ResponderFailed:
    return ResponderFailed("LLM answered 503", retryable=True, error_code="503")


async def received(fakes: Fakes, body: str = "hello", sid: str = "SM" + "a" * 32) -> str:
    result = await fakes.receive().execute(inbound(sid=sid, body=body))
    await fakes.queue.receive(10, 0)  # the generate_reply job these runs stand for
    return result.message_id


async def test_a_permanent_failure_sends_the_fallback_flagged_for_a_person(
    fakes: Fakes,
) -> None:
    message_id = await received(fakes)
    responder = ScriptedResponder(
        ResponderFailed("LLM answered 401", retryable=False, error_code="invalid_api_key"))
    with running_attempt(1, 5):  # not the last attempt: permanent is permanent anyway
        reply = await generating(fakes, responder).execute(GenerateReplyPayload(message_id))
    assert reply.body == FALLBACK and reply.reply_to_id == message_id
    assert reply.metadata == {"needs_person": True, "fallback_reason": "invalid_api_key"}
    [envelope] = fakes.sender.sent
    assert envelope.body == FALLBACK


async def test_a_transient_failure_before_the_last_attempt_is_raised_for_a_retry(
    fakes: Fakes,
) -> None:
    message_id = await received(fakes)
    use_case = generating(fakes, ScriptedResponder(transient()))
    with running_attempt(2, 3), pytest.raises(ResponderFailed):
        await use_case.execute(GenerateReplyPayload(message_id))
    async with fakes.uow() as uow:
        assert await uow.repository(MessageRepository).get_reply_to(message_id) is None
    assert fakes.sender.sent == []


async def test_a_transient_failure_on_the_last_attempt_sends_the_fallback(
    fakes: Fakes,
) -> None:
    message_id = await received(fakes)
    responder = ScriptedResponder(transient(), transient(), transient())
    for attempt in (1, 2):
        with running_attempt(attempt, 3), pytest.raises(ResponderFailed):
            await generating(fakes, responder).execute(GenerateReplyPayload(message_id))
    with running_attempt(3, 3):
        reply = await generating(fakes, responder).execute(GenerateReplyPayload(message_id))
    assert reply.body == FALLBACK and reply.metadata["fallback_reason"] == "503"
    assert [e.body for e in fakes.sender.sent] == [FALLBACK]


async def test_outside_a_worker_nothing_retries_so_the_fallback_goes_at_once(
    fakes: Fakes,
) -> None:
    message_id = await received(fakes)
    reply = await generating(fakes, ScriptedResponder(transient())).execute(
        GenerateReplyPayload(message_id))
    assert reply.body == FALLBACK


async def test_a_redelivered_job_after_the_fallback_neither_asks_nor_sends_again(
    fakes: Fakes,
) -> None:
    message_id = await received(fakes)
    responder = ScriptedResponder(ResponderFailed("400", retryable=False))
    first = await generating(fakes, responder).execute(GenerateReplyPayload(message_id))
    again = await generating(fakes, responder).execute(GenerateReplyPayload(message_id))
    assert again.id == first.id and again.status is DeliveryStatus.SENT
    assert len(responder.calls) == 1 and len(fakes.sender.sent) == 1


async def test_the_history_given_to_the_responder_fits_the_budget_newest_kept(
    fakes: Fakes,
) -> None:
    fakes.ids = OrderedIds()
    for n, body in enumerate(["first " * 10, "second", "third"], start=1):
        fakes.clock.advance(timedelta(seconds=1))
        await received(fakes, body=body, sid=f"SM{n:032x}")
    fakes.clock.advance(timedelta(seconds=1))
    latest = await received(fakes, body="latest", sid=f"SM{9:032x}")
    responder = ScriptedResponder()
    # 6 (latest) + 5 (third) + 6 (second) = 17; "first ..." (60) does not fit in 30.
    await generating(fakes, responder, history_budget_chars=30).execute(
        GenerateReplyPayload(latest))
    assert responder.calls == [["second", "third", "latest"]]


async def test_a_message_larger_than_the_budget_is_still_answered(fakes: Fakes) -> None:
    fakes.ids = OrderedIds()
    earlier = "before"
    await received(fakes, body=earlier, sid=f"SM{1:032x}")
    fakes.clock.advance(timedelta(seconds=1))
    latest = await received(fakes, body="x" * 100, sid=f"SM{2:032x}")
    responder = ScriptedResponder()
    await generating(fakes, responder, history_budget_chars=10).execute(
        GenerateReplyPayload(latest))
    assert responder.calls == [["x" * 100]]
