"""Steps shared by the use cases that add a message to a conversation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from application.errors import ConcurrencyError
from application.policy import ConversationPolicy
from application.ports.id_generator import IdGenerator
from application.ports.unit_of_work import UnitOfWork
from domain.conversation import Conversation, ConversationStatus

T = TypeVar("T")

CONFLICT_RETRIES = 3


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
    current = await uow.conversations.get_open(owner_id, contact)
    if current is not None and current.is_stale(now, policy.idle_timeout, policy.expiration):
        await uow.conversations.update(current.closed(now))
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
    return await uow.conversations.add_open_or_get(fresh)


async def retry_on_conflict(
    unit: Callable[[], Awaitable[T]], attempts: int = CONFLICT_RETRIES
) -> T:
    """Run ``unit`` again when a racing write to the same conversation committed first."""
    for _ in range(attempts - 1):
        try:
            return await unit()
        except ConcurrencyError:
            continue
    return await unit()
