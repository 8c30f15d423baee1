"""The lifecycle periodic task: close conversations idle or open for too long.

Each conversation is closed by a versioned update in its own unit of work, so of several
workers running the task at once exactly one closes it (the others' units fail with
``ConcurrencyError`` and move on), and running it again finds nothing left to close.
The closing message, when the owner has one, is stored in that same unit (so it exists
once, exactly when the close happened) and only while the contact's 24-hour window is
open; its send is queued after the commit, under the send's dedup key, and the sweep
finds it should that enqueue be lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from application.channel_policy import ChannelPolicy
from application.errors import ConcurrencyError
from application.policy import ConversationPolicy
from application.ports.assistant_profiles import AssistantProfiles
from application.ports.clock import Clock
from application.ports.conversation_metrics import ConversationMetrics
from application.ports.conversation_repository import ConversationRepository
from application.ports.id_generator import IdGenerator
from application.ports.job_queue import JobQueue
from application.ports.message_repository import MessageRepository
from application.ports.repository import Condition
from application.ports.unit_of_work import UnitOfWork
from application.tasks import SEND_MESSAGE, SendMessagePayload
from application.use_cases.handoff import BOT, ORIGIN
from application.use_cases.window import window_is_open
from domain.conversation import ClosedReason, Conversation, ConversationStatus
from domain.message import DeliveryStatus, Direction, Message, MessageType

log = logging.getLogger(__name__)

CLOSING = "closing"


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """``closing_message``: the deployment's; an owner's profile may override it.
    ``batch``: conversations looked at per reason and run."""

    closing_message: str | None = None
    batch: int = 200


@dataclass(frozen=True, slots=True)
class Closed:
    conversation_id: str
    reason: ClosedReason
    closing_message_id: str | None


class CloseStaleConversations:
    def __init__(
        self,
        uow: UnitOfWork,
        queue: JobQueue,
        clock: Clock,
        ids: IdGenerator,
        policy: ConversationPolicy,
        lifecycle: LifecyclePolicy,
        channel: ChannelPolicy,
        profiles: AssistantProfiles,
        metrics: ConversationMetrics,
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._clock = clock
        self._ids = ids
        self._policy = policy
        self._lifecycle = lifecycle
        self._channel = channel
        self._profiles = profiles
        self._metrics = metrics

    async def execute(self) -> list[Closed]:
        now = self._clock.now()
        closed = []
        for candidate in await self._candidates(now):
            try:
                done = await self._close(candidate.id, now)
            except ConcurrencyError:
                # Another worker (or an inbound message) wrote it first; the next run
                # looks again if it is still stale.
                continue
            if done is None:
                continue
            self._metrics.closed(done.reason)
            if done.closing_message_id is not None:
                payload = SendMessagePayload(done.closing_message_id)
                await self._queue.enqueue(SEND_MESSAGE, payload.to_payload(),
                                          dedup_key=payload.dedup_key)
            closed.append(done)
        if closed:
            log.info("closed %d conversation(s)", len(closed))
        return closed

    async def _candidates(self, now: datetime) -> list[Conversation]:
        open_ = Condition("status", "eq", ConversationStatus.OPEN.value)
        limit = self._lifecycle.batch
        async with self._uow as uow:
            conversations = uow.repository(ConversationRepository)
            expired = await conversations.query(
                [open_, Condition("created_at", "lte", now - self._policy.expiration)],
                limit=limit)
            idle = await conversations.query(
                [open_, Condition("last_message_at", "lte", now - self._policy.idle_timeout)],
                limit=limit)
        found = {c.id: c for c in [*expired.items, *idle.items]}
        return list(found.values())

    async def _close(self, conversation_id: str, now: datetime) -> Closed | None:
        async with self._uow as uow:
            conversations = uow.repository(ConversationRepository)
            current = await conversations.get_by_id(conversation_id)
            if current is None or current.status is not ConversationStatus.OPEN:
                return None
            reason = current.stale_reason(now, self._policy.idle_timeout,
                                          self._policy.expiration)
            if reason is None:
                return None  # a message arrived since the candidates were read
            await conversations.update(current.closed(now, reason))
            message = await self._closing_message(uow, current, reason, now)
            await uow.commit()
        return Closed(conversation_id, reason, message.id if message else None)

    async def _closing_message(
        self, uow: UnitOfWork, conversation: Conversation, reason: ClosedReason, now: datetime
    ) -> Message | None:
        profile = await self._profiles.for_owner(conversation.owner_id)
        text = profile.closing_message or self._lifecycle.closing_message
        if not text or not text.strip():
            return None
        if not await window_is_open(uow, conversation.contact, conversation.channel,
                                    now - self._channel.window):
            return None  # free-form text outside the window would be refused by Twilio
        message = Message(
            id=self._ids.new_id(), conversation_id=conversation.id,
            owner_id=conversation.owner_id, direction=Direction.OUTBOUND,
            type=MessageType.TEXT, body=text, from_address=conversation.channel,
            to_address=conversation.contact, status=DeliveryStatus.PENDING,
            created_at=now, updated_at=now,
            metadata={ORIGIN: BOT, CLOSING: str(reason)},
        )
        await uow.repository(MessageRepository).add_if_new(message)
        return message
