"""The lifecycle task: idle and expired conversations close once, with one closing message."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from application.channel_policy import ChannelPolicy
from application.policy import ConversationPolicy
from application.ports.assistant_profiles import AssistantProfile, SameForEveryOwner
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.tasks import SEND_MESSAGE
from application.use_cases.close_conversations import CloseStaleConversations, LifecyclePolicy
from domain.conversation import ConversationStatus
from domain.message import Direction, Message
from tests.unit.conftest import Fakes
from tests.unit.test_use_cases import inbound

CLOSING = "Thanks for writing! This chat is now closed."


class CountingMetrics:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def closed(self, reason: str) -> None:
        self.reasons.append(reason)


def closer(fakes: Fakes, metrics: CountingMetrics, closing: str | None = CLOSING,
           profile: AssistantProfile | None = None) -> CloseStaleConversations:
    return CloseStaleConversations(
        fakes.uow(), fakes.queue, fakes.clock, fakes.ids, fakes.policy,
        LifecyclePolicy(closing_message=closing), ChannelPolicy(),
        SameForEveryOwner(profile), metrics)


async def started(fakes: Fakes, n: int = 1) -> None:
    for i in range(n):
        await fakes.receive().execute(inbound(sid=f"SM{i + 1:032x}"))
    await fakes.queue.receive(10, 0)  # the reply jobs: not what this test is about


async def outbound(fakes: Fakes) -> list[Message]:
    async with fakes.uow() as uow:
        return await uow.repository(MessageRepository).find_by(
            direction=Direction.OUTBOUND.value)


async def test_an_idle_conversation_closes_once_with_one_closing_message(
    fakes: Fakes,
) -> None:
    await started(fakes)
    metrics = CountingMetrics()
    assert await closer(fakes, metrics).execute() == []  # not idle yet

    fakes.clock.advance(fakes.policy.idle_timeout)
    [done] = await closer(fakes, metrics).execute()
    assert await closer(fakes, metrics).execute() == []  # idempotent

    assert done.reason == "idle" and metrics.reasons == ["idle"]
    async with fakes.uow() as uow:
        c = await uow.repository(ConversationRepository).get_by_id(done.conversation_id)
    assert c is not None and c.status is ConversationStatus.CLOSED
    assert c.closed_reason == "idle"
    [message] = await outbound(fakes)
    assert message.body == CLOSING and message.metadata["closing"] == "idle"
    assert message.id == done.closing_message_id
    [job] = await fakes.queue.receive(10, 0)
    assert job.task == SEND_MESSAGE and job.payload["message_id"] == message.id


async def test_workers_racing_close_each_conversation_once(fakes: Fakes) -> None:
    await started(fakes)
    fakes.clock.advance(fakes.policy.idle_timeout + timedelta(minutes=1))
    metrics = CountingMetrics()
    results = await asyncio.gather(*(closer(fakes, metrics).execute() for _ in range(4)))
    assert sum(len(r) for r in results) == 1
    assert len(await outbound(fakes)) == 1
    assert metrics.reasons == ["idle"]


async def test_an_expired_conversation_closes_for_expiry() -> None:
    fakes = Fakes(policy=ConversationPolicy(idle_timeout=timedelta(minutes=20),
                                            expiration=timedelta(minutes=30)))
    await started(fakes)
    fakes.clock.advance(timedelta(minutes=15))
    await fakes.receive().execute(inbound(sid="SM" + "e" * 32))  # busy: never idle
    fakes.clock.advance(timedelta(minutes=16))
    metrics = CountingMetrics()
    [done] = await closer(fakes, metrics).execute()
    assert done.reason == "expired" and metrics.reasons == ["expired"]


async def test_no_closing_message_outside_the_window_or_without_one(fakes: Fakes) -> None:
    await started(fakes)
    # Idle past the 24-hour window: closing it says nothing (Twilio would refuse it).
    fakes.clock.advance(ChannelPolicy().window + timedelta(minutes=1))
    [done] = await closer(fakes, CountingMetrics()).execute()
    assert done.closing_message_id is None and await outbound(fakes) == []

    other = Fakes()
    await started(other)
    other.clock.advance(other.policy.idle_timeout)
    [done] = await closer(other, CountingMetrics(), closing=None).execute()
    assert done.closing_message_id is None and await outbound(other) == []


async def test_the_owners_profile_gives_the_closing_message(fakes: Fakes) -> None:
    await started(fakes)
    fakes.clock.advance(fakes.policy.idle_timeout)
    profile = AssistantProfile(closing_message="Tchau! Até logo.")
    await closer(fakes, CountingMetrics(), closing=None, profile=profile).execute()
    [message] = await outbound(fakes)
    assert message.body == "Tchau! Até logo."
