"""Whether the bot answers an inbound message at all.

It does not when the owner's profile says so (``answers`` False), when a person holds the
conversation, or when the message asks for a person (a handoff keyword: recorded here).
A skipped message still gets THE reply row (unique per inbound message), ``canceled`` and
never sent, with the reason in ``metadata["skipped"]``: the sweep, which re-queues inbound
messages without a reply, then leaves it alone, and the read API shows why.
"""

from __future__ import annotations

import enum
from datetime import datetime

from application.ports.assistant_profiles import AssistantProfile
from application.ports.conversation_repository import ConversationRepository
from application.ports.id_generator import IdGenerator
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from domain.conversation import ANY_AGENT, Conversation
from domain.message import DeliveryStatus, Message

SKIPPED = "skipped"


class Skip(enum.StrEnum):
    ASSISTANT_OFF = "assistant_off"
    HANDED_OFF = "handed_off"
    ASKED_FOR_PERSON = "asked_for_person"


def skip_reason(
    profile: AssistantProfile, conversation: Conversation, inbound: Message,
    keywords: frozenset[str], now: datetime,
) -> Skip | None:
    if conversation.held_by(now) is not None:
        return Skip.HANDED_OFF
    if inbound.body.strip().casefold() in keywords:
        return Skip.ASKED_FOR_PERSON
    if not profile.answers:
        return Skip.ASSISTANT_OFF
    return None


async def store_skip(
    uow: UnitOfWork, ids: IdGenerator, inbound: Message, reason: Skip, now: datetime,
    hold_until: datetime | None,
) -> Message:
    """Store the skipped reply (and, for a keyword, the handoff) in one unit.

    Idempotent: a second run finds the reply row and changes nothing. A racing write to
    the conversation raises ``ConcurrencyError`` (the caller retries the unit).
    """
    async with uow:
        messages = uow.repository(MessageRepository)
        existing = await messages.get_reply_to(inbound.id)
        if existing is not None:
            return existing
        if reason is Skip.ASKED_FOR_PERSON:
            conversations = uow.repository(ConversationRepository)
            current = await conversations.get_by_id(inbound.conversation_id)
            if current is not None and current.held_by(now) is None:
                await conversations.update(
                    current.handed_off(ANY_AGENT, now, hold_until).flagged_for_person(now))
        marker = inbound.reply(ids.new_id(), "", now, status=DeliveryStatus.CANCELED,
                               metadata={SKIPPED: str(reason)})
        if not await messages.add_if_new(marker):
            await uow.rollback()
            stored = await messages.get_reply_to(inbound.id)
            return stored if stored is not None else marker
        await uow.commit()
        return marker
