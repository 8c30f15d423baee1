"""Hand a conversation to a person and back.

While an agent holds a conversation no automatic reply is generated (``GenerateReply``)
and no bot reply is sent (``SendOutboundMessage`` checks the holder in the unit that
claims the send). Both writes are versioned updates of the conversation row, so a
handoff and a send claim racing for it are ordered: the claim that loses sees the
handoff. A hold ends when released, or by itself at ``held_until``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from application.errors import NotFound
from application.policy import HandoffPolicy
from application.ports.clock import Clock
from application.ports.conversation_repository import ConversationRepository
from application.ports.unit_of_work import UnitOfWork
from application.use_cases.conversations import retry_on_conflict
from domain.conversation import Conversation, ConversationStatus
from domain.message import Message

# metadata["origin"] of an outbound message the bot wrote without replying to one
# (a closing message); replies are the bot's by their ``reply_to_id``.
ORIGIN = "origin"
BOT = "bot"
HANDED_OFF = "HANDED_OFF"


def is_bot_message(message: Message) -> bool:
    """Written by the assistant, not an agent: held back while a person holds the chat."""
    return message.reply_to_id is not None or message.metadata.get(ORIGIN) == BOT


@dataclass(frozen=True, slots=True)
class HandoffRequest:
    owner_id: str
    conversation_id: str
    agent_id: str
    # None: the policy's timeout.
    minutes: int | None = None


@dataclass(frozen=True, slots=True)
class ReleaseRequest:
    owner_id: str
    conversation_id: str


async def change_conversation(
    uow: UnitOfWork, owner_id: str, conversation_id: str,
    change: Callable[[Conversation], Conversation],
) -> Conversation:
    """Apply ``change`` to an owner's open conversation in one versioned write."""
    async with uow:
        conversations = uow.repository(ConversationRepository)
        current = await conversations.get_by_id(conversation_id)
        if current is None or current.owner_id != owner_id:
            raise NotFound(f"no conversation {conversation_id}")
        if current.status is not ConversationStatus.OPEN:
            raise NotFound(f"conversation {conversation_id} is closed")
        stored = await conversations.update(change(current))
        await uow.commit()
        return stored


class HandOffConversation:
    def __init__(self, uow: UnitOfWork, clock: Clock, policy: HandoffPolicy) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy

    def until(self, now: datetime, minutes: int | None) -> datetime | None:
        timeout = timedelta(minutes=minutes) if minutes is not None else self._policy.timeout
        return now + timeout if timeout is not None else None

    async def execute(self, request: HandoffRequest) -> Conversation:
        """Raises ``NotFound`` for an unknown, closed or another owner's conversation."""
        def hand_off(current: Conversation) -> Conversation:
            now = self._clock.now()
            return current.handed_off(request.agent_id, now, self.until(now, request.minutes))

        return await retry_on_conflict(partial(
            change_conversation, self._uow, request.owner_id, request.conversation_id, hand_off))


class ReleaseConversation:
    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, request: ReleaseRequest) -> Conversation:
        def release(current: Conversation) -> Conversation:
            return current.released(self._clock.now())

        return await retry_on_conflict(partial(
            change_conversation, self._uow, request.owner_id, request.conversation_id, release))
