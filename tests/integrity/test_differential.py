"""Differential: one generated story of webhooks gives the same stored state everywhere.

Hypothesis writes a sequence of inbound messages (unicode, emoji, bodies up to the cap,
closure keywords, repeated MessageSids), worker runs, clock jumps and status callbacks
(out of order, unknown ones, unknown sids). The sequence runs through the use cases on a
backend and on the in-memory reference; the normalised views must be equal. Ids differ
between runs, so the view names everything by MessageSid, contact and bodies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.echo.responder import EchoResponder
from adapters.in_memory.clock import FrozenClock
from adapters.in_memory.job_queue import InMemoryJobQueue
from adapters.in_memory.repositories import InMemoryStore
from adapters.in_memory.unit_of_work import InMemoryUnitOfWork
from adapters.system.ids import UlidGenerator
from application.policy import AssistantPolicy, ConversationPolicy
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.message_sender import OutboundEnvelope, SendReceipt
from application.tasks import GENERATE_REPLY, GenerateReplyPayload, SendMessagePayload
from application.use_cases.generate_reply import GenerateReply
from application.use_cases.receive_inbound import InboundMessage, ReceiveInboundMessage
from application.use_cases.record_delivery_status import RecordDeliveryStatus, StatusUpdate
from application.use_cases.send_outbound import SendOutboundMessage
from domain.message import DeliveryStatus, Direction
from tests.integrity.conftest import Backend
from tests.unit.splitting import SPLITTER

pytestmark = pytest.mark.integration

OWNER = "AC" + "2" * 32
CHANNEL = "whatsapp:+14155238886"
CONTACTS = ["whatsapp:+5511900000001", "whatsapp:+5511900000002", "whatsapp:+447700900123"]
BODY_CAP = 1600  # Twilio's WhatsApp body limit

# Any character but NUL and lone surrogates: those the edge refuses before intake.
_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
bodies = st.one_of(
    st.text(_chars, min_size=1, max_size=40),
    st.sampled_from(["bye", " Bye ", "STOP", "tchau!", "sair", "end", "adios"]),
    st.sampled_from(["🙂", "👍🏽", "👨‍👩‍👧‍👦", "🇧🇷 olá", "مرحبا", "你好", "e\u0301", "\u202eevil"]),
    st.builds(lambda c, n: (c * n)[:BODY_CAP], st.sampled_from(["a", "é", "🙂", "x y "]),
              st.integers(BODY_CAP // 4, BODY_CAP)),
)
inbound_events = st.tuples(st.just("in"), st.integers(0, 7), st.sampled_from(CONTACTS), bodies)
events = st.lists(
    st.one_of(
        inbound_events,
        st.tuples(st.just("work")),
        st.tuples(st.just("tick"), st.sampled_from([1, 5, 20, 2000])),
        st.tuples(
            st.just("status"),
            st.integers(0, 9),  # which send (past the last one: an unknown sid)
            st.sampled_from(["queued", "sending", "sent", "delivered", "read", "failed",
                             "undelivered", "SENT", "bogus"]),
            st.one_of(st.none(), st.from_regex(r"\A[0-9]{5}\Z")),
        ),
    ),
    min_size=1,
    max_size=25,
)


@dataclass
class RecordingSender:
    """Takes every message, answering with sids in send order (the same on every run)."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, envelope: OutboundEnvelope) -> SendReceipt:
        self.sent.append((envelope.to_address, envelope.body))
        return SendReceipt(outbound_sid(len(self.sent)), DeliveryStatus.QUEUED)


def outbound_sid(n: int) -> str:
    """The sid of the n-th send (from 1), never one of an inbound message."""
    return f"SM{'f' * 16}{n:016x}"


async def play(uow: Any, story: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Run ``story`` through the use cases on ``uow``; the normalised result."""
    clock, ids, policy = FrozenClock(), UlidGenerator(), ConversationPolicy()
    queue, sender = InMemoryJobQueue(), RecordingSender()
    receive = ReceiveInboundMessage(uow(), queue, clock, ids, policy)
    generate = GenerateReply(uow(), EchoResponder(), queue, clock, ids, AssistantPolicy())
    send = SendOutboundMessage(uow(), sender, clock, SPLITTER)
    record = RecordDeliveryStatus(uow(), clock)
    outcomes: list[object] = []

    async def work() -> None:
        while jobs := await queue.receive(10, 0):
            for job in jobs:
                if job.task == GENERATE_REPLY:
                    await generate.execute(GenerateReplyPayload.from_payload(job.payload))
                else:
                    await send.execute(SendMessagePayload.from_payload(job.payload))
                await queue.ack(job)

    for event in story:
        clock.advance(timedelta(seconds=1))
        if event[0] == "in":
            _, n, contact, body = event
            result = await receive.execute(InboundMessage(
                message_sid=f"SM{n:032x}", owner_id=OWNER, from_address=contact,
                to_address=CHANNEL, body=body))
            outcomes.append(("in", result.duplicate, result.reply_queued))
        elif event[0] == "work":
            await work()
        elif event[0] == "tick":
            clock.advance(timedelta(minutes=event[1]))
        else:
            _, n, status, code = event
            changed = await record.execute(StatusUpdate(outbound_sid(n + 1), status, code))
            outcomes.append(("status", changed))
    await work()
    return {"outcomes": outcomes, "sent": sender.sent, "stored": await stored_view(uow)}


async def stored_view(uow: Any) -> list[Any]:
    """Conversations as (contact, status, messages), messages named by what they carry."""
    async with uow() as unit:
        conversations = await unit.repository(ConversationRepository).find_by()
        messages = await unit.repository(MessageRepository).find_by()
    by_id = {m.id: m for m in messages}

    def describe(m: Any) -> tuple[Any, ...]:
        replied_to = by_id[m.reply_to_id].provider_sid if m.reply_to_id else None
        return (m.direction.value, m.provider_sid, m.from_address, m.to_address, m.body,
                m.status.value, m.error_code, replied_to)

    view = []
    for conv in conversations:
        mine = [m for m in messages if m.conversation_id == conv.id]
        # Inbound ones by MessageSid; each reply right after what it answers.
        inbound = sorted((m for m in mine if m.direction is Direction.INBOUND),
                         key=lambda m: m.provider_sid)
        ordered = []
        for m in inbound:
            ordered.append(describe(m))
            ordered += [describe(r) for r in mine if r.reply_to_id == m.id]
        assert len(ordered) == len(mine)
        view.append((conv.contact, conv.status.value, ordered))
    return sorted(view, key=repr)


@pytest.mark.parametrize(
    "backend", ["sqlite", "sqlalchemy-postgres", "psycopg", "supabase"], indirect=True
)
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(story=events)
async def test_a_generated_story_stores_the_same_as_the_reference(
    backend: Backend, story: list[tuple[Any, ...]]
) -> None:
    await backend.wipe()  # one database per backend, emptied between examples
    store = InMemoryStore()
    expected = await play(lambda: InMemoryUnitOfWork(store), story)
    actual = await play(backend.uow, story)
    assert actual == expected


async def test_the_view_tells_stories_apart(backend: Backend) -> None:
    """The comparison can fail: a different body or a lost status shows in the view."""
    await backend.wipe()
    story: list[tuple[Any, ...]] = [("in", 1, CONTACTS[0], "olá 🙂"), ("work",),
                                    ("status", 0, "delivered", None)]
    base = await play(backend.uow, story)
    await backend.wipe()
    other = await play(backend.uow, [("in", 1, CONTACTS[0], "ola 🙂"), *story[1:]])
    assert other["stored"] != base["stored"]
    assert base["stored"][0][2][1][5] == "delivered"  # the reply took the callback
    assert base["outcomes"] == [("in", False, True), ("status", True)]
