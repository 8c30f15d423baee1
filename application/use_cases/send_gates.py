"""What stops a message before its send is claimed: a person holding the conversation
(for the bot's messages), a contact who opted out or cannot be reached, the 24-hour window.

Each gate runs inside the claim's unit of work. A refusal is stored there (the message
moves from ``pending`` only, so a racing claim or callback is never undone), committed,
and the message comes back refused; otherwise it comes back as it may be sent.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from application.channel_policy import ChannelPolicy
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from application.use_cases.handoff import HANDED_OFF, is_bot_message
from application.use_cases.window import contact_block, window_is_open
from domain.conversation import Conversation
from domain.message import DeliveryStatus, Message
from domain.outbound_parts import PartProgress
from domain.templates import Template

log = logging.getLogger(__name__)

WINDOW_CLOSED = "WINDOW_CLOSED"
CONTACT_BLOCKED = "CONTACT_BLOCKED"


async def _refuse(uow: UnitOfWork, message: Message, status: DeliveryStatus, code: str,
                  now: datetime) -> Message:
    await uow.repository(MessageRepository).compare_and_set_status(
        message.id, {DeliveryStatus.PENDING}, status, now, error_code=code)
    await uow.commit()
    return replace(message, status=status, error_code=code)


async def hold_gate(uow: UnitOfWork, message: Message, now: datetime,
                    known: Conversation | None = None) -> Message:
    """CANCELED when a person holds the conversation and the bot wrote the message.

    Otherwise the conversation row is rewritten at its version in this same unit as the
    claim: a handoff committed since it was read makes the unit fail (``ConcurrencyError``)
    and the claim's retry sees it. So no bot message is claimed, hence sent, after a
    handoff was recorded. ``known``: the conversation as the caller read it before; one
    held then is read again (never cancel on what may be stale).
    """
    if not is_bot_message(message):
        return message  # an agent's message goes out whoever holds the conversation
    conversations = uow.repository(ConversationRepository)
    conversation = (known if known is not None and known.id == message.conversation_id
                    and known.held_by(now) is None
                    else await conversations.get_by_id(message.conversation_id))
    if conversation is None:
        return message
    if conversation.held_by(now) is None:
        await conversations.update(conversation)
        return message
    log.info("message %s not sent: a person holds the conversation", message.id)
    return await _refuse(uow, message, DeliveryStatus.CANCELED, HANDED_OFF, now)


async def block_gate(uow: UnitOfWork, message: Message, now: datetime) -> Message:
    """FAILED when the contact opted out or is unreachable and has not written since."""
    if PartProgress.from_metadata(message.metadata) is not None:
        return message  # a send already under way (parts went out) is finished
    code = await contact_block(uow, message.to_address, message.from_address)
    if code is None:
        return message
    log.warning("message %s not sent: the contact is blocked (%s)", message.id, code)
    return await _refuse(uow, message, DeliveryStatus.FAILED, CONTACT_BLOCKED, now)


async def window_gate(uow: UnitOfWork, message: Message, now: datetime,
                      channel: ChannelPolicy, contact_wrote_at: datetime | None = None
                      ) -> Message:
    """FAILED when free-form text would go outside the contact's 24-hour window; a reply
    then uses the fallback template when one is configured.

    ``contact_wrote_at``: when the contact's message this answers was stored; inside the
    window, that alone shows the window open (no query).
    """
    if Template.from_metadata(message.metadata) is not None:
        return message
    since = now - channel.window
    if contact_wrote_at is not None and contact_wrote_at >= since:
        return message
    if await window_is_open(uow, message.to_address, message.from_address, since):
        return message
    fallback = channel.fallback_content_sid
    if fallback and message.reply_to_id is not None:
        log.info("reply %s is past the 24-hour window: using the fallback template",
                 message.id)
        template = Template(fallback, (), fallback=True)
        return replace(message, metadata={**message.metadata, **template.to_metadata()})
    log.warning("message %s refused: the contact's 24-hour window is closed", message.id)
    return await _refuse(uow, message, DeliveryStatus.FAILED, WINDOW_CLOSED, now)
