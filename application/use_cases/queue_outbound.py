"""Queue an outbound message from the internal API: store it pending, then queue its send.

Idempotent on the caller's key within the conversation: the key is stored with the message,
and the conversation's version check serializes racing requests, so two requests with one
key store one message. The lookup covers the conversation's latest ``IDEMPOTENCY_WINDOW``
messages; a key reused after that, or after the conversation closed, is a new message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from application.channel_policy import ChannelPolicy
from application.errors import ContactBlocked, WindowClosed
from application.policy import ConversationPolicy
from application.ports.clock import Clock
from application.ports.conversation_repository import ConversationRepository
from application.ports.id_generator import IdGenerator
from application.ports.job_queue import JobQueue
from application.ports.message_repository import MessageRepository
from application.ports.text_splitter import TextSplitter
from application.ports.unit_of_work import UnitOfWork
from application.tasks import SEND_MESSAGE, SendMessagePayload
from application.use_cases.conversations import open_conversation, retry_on_conflict
from application.use_cases.window import contact_block, window_is_open
from domain.conversation import Conversation
from domain.message import DeliveryStatus, Direction, Message, MessageType
from domain.templates import Template
from domain.text import MAX_OUTBOUND_BODY_CHARS, check_text
from domain.whatsapp import WhatsAppAddress

log = logging.getLogger(__name__)

IDEMPOTENCY_WINDOW = 100


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    owner_id: str
    channel: str  # the owner's WhatsApp number, the sender
    to: str
    body: str
    media_urls: tuple[str, ...] = ()
    idempotency_key: str | None = None
    correlation_id: str | None = None
    template: Template | None = None


@dataclass(frozen=True, slots=True)
class OutboundQueued:
    message_id: str
    conversation_id: str
    status: DeliveryStatus
    duplicate: bool
    parts: int = 1  # Twilio messages the body goes out as


class QueueOutboundMessage:
    def __init__(
        self,
        uow: UnitOfWork,
        queue: JobQueue,
        clock: Clock,
        ids: IdGenerator,
        policy: ConversationPolicy,
        splitter: TextSplitter,
        channel_policy: ChannelPolicy | None = None,
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._clock = clock
        self._ids = ids
        self._policy = policy
        self._splitter = splitter
        self._channel = channel_policy or ChannelPolicy()

    async def execute(self, request: OutboundRequest) -> OutboundQueued:
        check_text(request.body, "body", MAX_OUTBOUND_BODY_CHARS)
        contact = str(WhatsAppAddress.parse(request.to))
        channel = str(WhatsAppAddress.parse(request.channel))
        # A racing write to the conversation (maybe this very key) won: look again.
        message, duplicate = await retry_on_conflict(
            lambda: self._store(request, contact, channel)
        )
        if message.status is DeliveryStatus.PENDING:
            # After commit; a failed enqueue answers 503 and the client's retry re-queues it.
            payload = SendMessagePayload(message.id)
            await self._queue.enqueue(
                SEND_MESSAGE,
                payload.to_payload(),
                dedup_key=payload.dedup_key,
                headers={
                    "correlation_id": request.correlation_id or message.id,
                    "owner_id": message.owner_id,
                    "conversation_id": message.conversation_id,
                },
            )
        if duplicate:
            log.info("outbound message %s already queued for this key", message.id)
        templated = Template.from_metadata(message.metadata)
        parts = 1 if templated else len(self._splitter.split(message.body))
        return OutboundQueued(message.id, message.conversation_id, message.status, duplicate,
                              parts)

    async def _store(
        self, request: OutboundRequest, contact: str, channel: str
    ) -> tuple[Message, bool]:
        now = self._clock.now()
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            conversations = uow.repository(ConversationRepository)
            conversation = await open_conversation(
                uow, self._ids, self._policy, owner_id=request.owner_id,
                contact=contact, channel=channel, now=now,
            )
            if request.idempotency_key:
                recent = await messages.latest_for_conversation(
                    conversation.id, IDEMPOTENCY_WINDOW)
                for earlier in recent:
                    if (earlier.direction is Direction.OUTBOUND
                            and earlier.metadata.get("idempotency_key") == request.idempotency_key):
                        return earlier, True
            blocked = await contact_block(uow, contact, channel)
            if blocked is not None:
                raise ContactBlocked(
                    f"{contact} opted out or cannot be reached (Twilio error {blocked}); "
                    "nothing is sent until they write"
                )
            if request.template is None and not await window_is_open(
                uow, contact, channel, now - self._channel.window
            ):
                # Refused before anything is stored or sent: Twilio would refuse it (63016).
                raise WindowClosed(
                    f"{contact} has not written in the last {self._channel.window}: "
                    "only a template (content_sid) may be sent"
                )
            message = self._new_message(request, conversation, contact, channel)
            await messages.create(message)
            # The version check here is what makes two racing requests store one message.
            await conversations.update(conversation.touched(now))
            await uow.commit()
            return message, False

    def _new_message(
        self, request: OutboundRequest, conversation: Conversation, contact: str, channel: str
    ) -> Message:
        now = self._clock.now()
        metadata: dict[str, object] = {"source": "api"}
        if request.idempotency_key:
            metadata["idempotency_key"] = request.idempotency_key
        if request.media_urls:
            metadata["media"] = [{"url": url, "content_type": ""} for url in request.media_urls]
        if request.template is not None:
            metadata.update(request.template.to_metadata())
        return Message(
            id=self._ids.new_id(),
            conversation_id=conversation.id,
            owner_id=request.owner_id,
            direction=Direction.OUTBOUND,
            type=MessageType.MEDIA if request.media_urls else MessageType.TEXT,
            body=request.body,
            from_address=channel,
            to_address=contact,
            status=DeliveryStatus.PENDING,
            created_at=now,
            updated_at=now,
            metadata=metadata,
        )
