"""Store an inbound WhatsApp message and queue its reply, idempotently on MessageSid."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from application.errors import ConcurrencyError
from application.policy import ConversationPolicy
from application.ports.clock import Clock
from application.ports.conversation_repository import ConversationRepository
from application.ports.id_generator import IdGenerator
from application.ports.job_queue import JobQueue
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from application.tasks import (
    DOWNLOAD_MEDIA,
    GENERATE_REPLY,
    DownloadMediaPayload,
    GenerateReplyPayload,
)
from application.use_cases.conversations import open_conversation, retry_on_conflict
from application.use_cases.download_media import pending_media
from domain.conversation import ClosedReason, Conversation, is_closure_request
from domain.inbound_content import InboundContent
from domain.message import DeliveryStatus, Direction, Message
from domain.text import MAX_BODY_CHARS, check_text
from domain.whatsapp import WhatsAppAddress

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class InboundMessage:
    message_sid: str
    owner_id: str
    from_address: str
    to_address: str
    body: str
    media: tuple[tuple[str, str], ...] = ()
    profile_name: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InboundResult:
    message_id: str
    conversation_id: str
    duplicate: bool
    reply_queued: bool


class ReceiveInboundMessage:
    def __init__(
        self,
        uow: UnitOfWork,
        queue: JobQueue,
        clock: Clock,
        ids: IdGenerator,
        policy: ConversationPolicy,
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._clock = clock
        self._ids = ids
        self._policy = policy

    async def execute(self, request: InboundMessage) -> InboundResult:
        # Parse first: a malformed address or text is the caller's error and stores nothing.
        check_text(request.body, "Body", MAX_BODY_CHARS)
        InboundContent.parse(request.extra, request.media)  # refuses half a location
        contact = str(WhatsAppAddress.parse(request.from_address))
        channel = str(WhatsAppAddress.parse(request.to_address))
        stored, duplicate, needs_reply = await retry_on_conflict(
            lambda: self._store(request, contact, channel)
        )
        if needs_reply:
            # After commit: the database is the source of truth. If this enqueue fails the
            # webhook answers 5xx, Twilio retries, and the duplicate path queues it again.
            # Media first: the reply job is queued by the download once its items are in.
            task, payload = (
                (DOWNLOAD_MEDIA, DownloadMediaPayload(stored.id)) if pending_media(stored)
                else (GENERATE_REPLY, GenerateReplyPayload(stored.id)))
            await self._queue.enqueue(
                task,
                payload.to_payload(),
                dedup_key=payload.dedup_key,
                headers={
                    "correlation_id": request.message_sid,
                    "owner_id": request.owner_id,
                    "conversation_id": stored.conversation_id,
                },
            )
        return InboundResult(stored.id, stored.conversation_id, duplicate, needs_reply)

    async def _store(
        self, request: InboundMessage, contact: str, channel: str
    ) -> tuple[Message, bool, bool]:
        now = self._clock.now()
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            conversations = uow.repository(ConversationRepository)
            # Insert first, look up only when the MessageSid is taken: a redelivery is rare,
            # and the unit is one statement shorter for every new message. A duplicate's
            # conversation steps are rolled back with it.
            conversation = await open_conversation(
                uow, self._ids, self._policy, owner_id=request.owner_id,
                contact=contact, channel=channel, now=now,
            )
            message = self._new_message(request, conversation, contact, channel)
            if await messages.add_if_new(message):
                touched = conversation.touched(now)
                if is_closure_request(request.body, self._policy.closure_keywords):
                    touched = touched.closed(now, ClosedReason.CONTACT)
                await conversations.update(touched)
                await uow.commit()
                return message, False, True
            # A redelivery, or a concurrent delivery of the same MessageSid that won.
            await uow.rollback()
            existing = await messages.get_by_provider_sid(request.message_sid)
            if existing is None:  # pragma: no cover - the winner's row must be visible
                raise ConcurrencyError(f"message {request.message_sid} vanished")
            needs_reply = (
                existing.direction is Direction.INBOUND
                and await messages.get_reply_to(existing.id) is None
            )
            log.info("duplicate inbound message %s", request.message_sid)
            return existing, True, needs_reply

    def _new_message(
        self, request: InboundMessage, conversation: Conversation, contact: str, channel: str
    ) -> Message:
        now = self._clock.now()
        content = InboundContent.parse(request.extra, request.media)
        metadata: dict[str, Any] = {"twilio": dict(request.extra), **content.to_metadata()}
        if not request.media:
            del metadata["media"]
        if request.profile_name:
            metadata["profile_name"] = request.profile_name
        return Message(
            id=self._ids.new_id(),
            conversation_id=conversation.id,
            owner_id=request.owner_id,
            direction=Direction.INBOUND,
            type=content.type,
            body=request.body,
            from_address=contact,
            to_address=channel,
            status=DeliveryStatus.RECEIVED,
            created_at=now,
            updated_at=now,
            provider_sid=request.message_sid,
            metadata=metadata,
        )
