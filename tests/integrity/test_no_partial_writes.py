"""A refused or failed intake leaves no row behind, on every persistence backend.

``ReceiveInboundMessage`` opens (or creates) the conversation, stores the message and
touches the conversation in one unit of work. A failure anywhere after the conversation
step must undo all of it: no conversation without its message, no message half-stored.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

import pytest

from adapters.in_memory.clock import FrozenClock
from adapters.in_memory.job_queue import InMemoryJobQueue
from adapters.system.ids import UlidGenerator
from application.policy import ConversationPolicy
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from application.use_cases.receive_inbound import InboundMessage, ReceiveInboundMessage
from domain.message import Message
from tests.integrity.conftest import POSTGRES_BACKENDS, Backend

pytestmark = pytest.mark.integration

OWNER = "AC" + "1" * 32
CONTACT = "whatsapp:+5511955554444"
CHANNEL = "whatsapp:+14155238886"
STEPS = ["message-insert", "after-message-insert", "conversation-update", "commit"]


class Injected(RuntimeError):
    """The failure a test injects; nothing else raises it."""


class _FailingMessages:
    def __init__(self, inner: Any, step: str) -> None:
        self._inner, self._step = inner, step

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def add_if_new(self, message: Message) -> bool:
        if self._step == "message-insert":
            raise Injected("the message insert failed")
        added: bool = await self._inner.add_if_new(message)
        if self._step == "after-message-insert":
            raise Injected("failed right after the message insert")
        return added


class _FailingConversations:
    def __init__(self, inner: Any, step: str) -> None:
        self._inner, self._step = inner, step

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def update(self, conversation: Any) -> Any:
        if self._step == "conversation-update":
            raise Injected("the conversation update failed")
        return await self._inner.update(conversation)


class FailingUnitOfWork:
    """A real unit of work whose ``step`` fails once the conversation step has run."""

    def __init__(self, inner: UnitOfWork, step: str) -> None:
        self._inner, self._step = inner, step

    def repository(self, port: type[Any]) -> Any:
        inner = self._inner.repository(port)
        if port is ConversationRepository:
            return _FailingConversations(inner, self._step)
        if port is MessageRepository:
            return _FailingMessages(inner, self._step)
        return inner

    def repository_for(self, entity: type[Any]) -> Any:
        return self._inner.repository_for(entity)

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        if self._step == "commit":
            raise Injected("the commit failed")
        await self._inner.commit()

    async def rollback(self) -> None:
        await self._inner.rollback()


def receive(uow: Any, clock: FrozenClock, queue: InMemoryJobQueue) -> ReceiveInboundMessage:
    return ReceiveInboundMessage(uow, queue, clock, UlidGenerator(), ConversationPolicy())


def inbound(sid: str, body: str = "hello") -> InboundMessage:
    return InboundMessage(message_sid=sid, owner_id=OWNER, from_address=CONTACT,
                          to_address=CHANNEL, body=body)


async def rows(backend: Backend) -> tuple[int, int]:
    async with backend.uow() as uow:
        conversations = await uow.repository(ConversationRepository).count()
        return conversations, await uow.repository(MessageRepository).count()


@pytest.mark.parametrize("step", STEPS)
async def test_a_failure_after_the_conversation_step_stores_nothing(
    backend: Backend, step: str
) -> None:
    clock, queue = FrozenClock(), InMemoryJobQueue()
    with pytest.raises(Injected):
        await receive(FailingUnitOfWork(backend.uow(), step), clock, queue).execute(
            inbound("SM" + "a" * 32))
    assert await rows(backend) == (0, 0)
    assert await queue.depth() == 0
    # The same delivery, retried by Twilio, is then stored whole, once.
    result = await receive(backend.uow(), clock, queue).execute(inbound("SM" + "a" * 32))
    assert not result.duplicate and result.reply_queued
    assert await rows(backend) == (1, 1)


@pytest.mark.parametrize("step", STEPS)
async def test_a_failure_leaves_an_open_conversation_as_it_was(
    backend: Backend, step: str
) -> None:
    clock, queue = FrozenClock(), InMemoryJobQueue()
    first = await receive(backend.uow(), clock, queue).execute(inbound("SM" + "b" * 32))
    async with backend.uow() as uow:
        before = await uow.repository(ConversationRepository).get_by_id(first.conversation_id)
    clock.advance(timedelta(minutes=1))
    with pytest.raises(Injected):
        await receive(FailingUnitOfWork(backend.uow(), step), clock, queue).execute(
            inbound("SM" + "c" * 32, "bye"))  # a closure keyword: the update would close it
    async with backend.uow() as uow:
        assert await uow.repository(ConversationRepository).get_by_id(
            first.conversation_id
        ) == before
        assert await uow.repository(MessageRepository).get_by_provider_sid("SM" + "c" * 32) is None
    assert await rows(backend) == (1, 1)


@pytest.mark.parametrize("step", STEPS)
async def test_a_failure_after_closing_a_stale_conversation_keeps_it_open(
    backend: Backend, step: str
) -> None:
    clock, queue = FrozenClock(), InMemoryJobQueue()
    first = await receive(backend.uow(), clock, queue).execute(inbound("SM" + "d" * 32))
    clock.advance(timedelta(hours=2))  # idle past the timeout: the next message closes it
    with pytest.raises(Injected):
        await receive(FailingUnitOfWork(backend.uow(), step), clock, queue).execute(
            inbound("SM" + "e" * 32))
    async with backend.uow() as uow:
        still = await uow.repository(ConversationRepository).get_by_id(first.conversation_id)
        assert still is not None and still.status == "open"
    assert await rows(backend) == (1, 1)


# Values PostgreSQL itself refuses (SQLite and memory store them): the database's own
# error, not an injected one, must leave nothing behind either.
REFUSED_BY_POSTGRES = {
    "sid-over-column-width": inbound("SM" + "f" * 4998),
    "nul-in-body": inbound("SM" + "9" * 32, "nul \x00 inside"),
    "nul-in-sid": inbound("SM" + "8" * 31 + "\x00"),
}


@pytest.mark.parametrize("backend", POSTGRES_BACKENDS, indirect=True)
@pytest.mark.parametrize("case", sorted(REFUSED_BY_POSTGRES))
async def test_a_value_postgres_refuses_stores_nothing(backend: Backend, case: str) -> None:
    queue = InMemoryJobQueue()
    # Each backend has its own error for it (ValueError, StorageUnavailable...).
    with pytest.raises(Exception) as refused:
        await receive(backend.uow(), FrozenClock(), queue).execute(REFUSED_BY_POSTGRES[case])
    assert not isinstance(refused.value, Injected)
    assert await rows(backend) == (0, 0)
    assert await queue.depth() == 0


async def test_a_burst_from_one_contact_is_stored_whole(backend: Backend) -> None:
    """Twilio re-posting a backlog after an outage: many units race for one conversation
    row; every message is stored (none answered with a conflict), all in one conversation."""
    clock, queue = FrozenClock(), InMemoryJobQueue()
    sids = [f"SM{n:032x}" for n in range(12)]
    results = await asyncio.gather(*(
        receive(backend.uow(), clock, queue).execute(inbound(sid, f"burst {sid}"))
        for sid in sids))
    assert {r.conversation_id for r in results} == {results[0].conversation_id}
    assert await rows(backend) == (1, len(sids))
    assert await queue.depth() == len(sids)
