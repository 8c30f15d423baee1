"""Steps shared by the use cases that add a message to a conversation."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from application.errors import ConcurrencyError
from application.policy import ConversationPolicy
from application.ports.conversation_repository import ConversationRepository
from application.ports.id_generator import IdGenerator
from application.ports.unit_of_work import UnitOfWork
from domain.conversation import Conversation, ConversationStatus

T = TypeVar("T")

# A burst from one contact (Twilio re-posting after an outage) makes several units race
# for the same conversation row, and each round only one of them wins: enough attempts,
# spread out a little, that such a burst is stored instead of answered 409 (which Twilio
# does not retry).
CONFLICT_RETRIES = 8
CONFLICT_BACKOFF_SECONDS = 0.005


async def open_conversation(
    uow: UnitOfWork,
    ids: IdGenerator,
    policy: ConversationPolicy,
    *,
    owner_id: str,
    contact: str,
    channel: str,
    now: datetime,
) -> Conversation:
    """The open conversation of owner and contact, closing a stale one and opening anew.

    Runs inside the caller's open unit of work; concurrent callers end up with one row.
    """
    current = await uow.repository(ConversationRepository).get_open(owner_id, contact)
    reason = (current.stale_reason(now, policy.idle_timeout, policy.expiration)
              if current is not None else None)
    if current is not None and reason is not None:
        await uow.repository(ConversationRepository).update(current.closed(now, reason))
        current = None
    if current is not None:
        return current
    fresh = Conversation(
        id=ids.new_id(),
        owner_id=owner_id,
        contact=contact,
        channel=channel,
        status=ConversationStatus.OPEN,
        created_at=now,
        updated_at=now,
        last_message_at=now,
    )
    return await uow.repository(ConversationRepository).add_open_or_get(fresh)


async def retry_on_conflict(
    unit: Callable[[], Awaitable[T]], attempts: int = CONFLICT_RETRIES
) -> T:
    """Run ``unit`` again when a racing write to the same conversation committed first.

    Between attempts it waits a random fraction of a doubling step, so the losers of one
    round do not all collide again at once.
    """
    for attempt in range(attempts - 1):
        try:
            return await unit()
        except ConcurrencyError:
            await asyncio.sleep(random.uniform(0, CONFLICT_BACKOFF_SECONDS * 2**attempt))
    return await unit()
