"""Produce and store the reply to an inbound message, then send it or queue its send.

Idempotent per inbound message: at most one reply row exists (unique ``reply_to_id``), so
a redelivered job reuses the stored reply instead of writing or sending a second one.

With ``send_now`` (the worker's wiring), the reply is sent in the same job: a second job
would cost a queue round trip per message for nothing. This job is then what carries the
send at least once: if the process dies before the send, the job is delivered again,
finds the reply still pending and sends it; once claimed, nothing sends it twice. If the
send fails, the reply is handed to a ``send_message`` job, which retries and dead-letters
as before.

When the responder fails retryably, the job fails and is retried with backoff. When it
fails for good, or on the job's last attempt, the contact gets the fallback message
instead, stored as THE reply (so once, however often the job runs) and marked
``needs_person`` in its metadata and on the conversation, so the read API shows that a
person should take it.

No reply is generated while a person holds the conversation, when the message asks for
one, or when the owner's profile turns answers off (``reply_gate``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

from application.attempt import current_attempt, is_last_attempt
from application.errors import DeliveryFailed, PermanentJobError
from application.history import within_budget
from application.policy import AssistantPolicy, HandoffPolicy, MediaPolicy
from application.ports.assistant_profiles import (
    AssistantProfile,
    AssistantProfiles,
    SameForEveryOwner,
)
from application.ports.blob_store import BlobStore
from application.ports.clock import Clock
from application.ports.conversation_repository import ConversationRepository
from application.ports.id_generator import IdGenerator
from application.ports.job_queue import JobQueue
from application.ports.message_repository import MessageRepository
from application.ports.reply_allowance import ReplyAllowance
from application.ports.responder import Image, Reply, Responder, ResponderFailed
from application.ports.unit_of_work import UnitOfWork
from application.tasks import SEND_MESSAGE, GenerateReplyPayload, SendMessagePayload
from application.use_cases.conversations import retry_on_conflict
from application.use_cases.reply_gate import skip_reason, store_skip
from application.use_cases.reply_media import UNSUPPORTED_IMAGE, image_keys, load_images
from application.use_cases.send_outbound import JustStored, SendOutboundMessage
from domain.conversation import Conversation
from domain.message import DeliveryStatus, Direction, Message, MessageType

log = logging.getLogger(__name__)

_UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


class GenerateReply:
    def __init__(
        self,
        uow: UnitOfWork,
        responder: Responder,
        queue: JobQueue,
        clock: Clock,
        ids: IdGenerator,
        policy: AssistantPolicy,
        send_now: SendOutboundMessage | None = None,
        profiles: AssistantProfiles | None = None,
        handoff: HandoffPolicy | None = None,
        media: MediaPolicy | None = None,
        blobs: BlobStore | None = None,
        allowance: ReplyAllowance | None = None,
    ) -> None:
        self._uow = uow
        self._media = media or MediaPolicy()
        self._blobs = blobs
        self._profiles = profiles or SameForEveryOwner()
        self._handoff = handoff or HandoffPolicy()
        self._allowance = allowance
        self._send_now = send_now
        self._responder = responder
        self._queue = queue
        self._clock = clock
        self._ids = ids
        self._policy = policy

    async def execute(self, request: GenerateReplyPayload) -> Message:
        # One read unit for all the job needs before the responder: on SQLite every unit
        # takes the write lock, which intake contends for.
        conversation: Conversation | None = None  # read only when the reply is still to make
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            inbound = await messages.get_by_id(request.message_id)
            if inbound is None or inbound.direction is not Direction.INBOUND:
                raise PermanentJobError(f"no inbound message {request.message_id}")
            reply = await messages.get_reply_to(inbound.id)
            if reply is None:
                conversation, history = await self._context(uow, inbound)
        if reply is None:
            assert conversation is not None  # read with the history above
            profile = await self._profiles.for_owner(inbound.owner_id)
            now = self._clock.now()
            skip = skip_reason(profile, conversation, inbound, self._handoff.keywords, now)
            if skip is not None:
                log.info("no automatic reply to %s: %s", inbound.id, skip)
                until = now + self._handoff.timeout if self._handoff.timeout else None
                return await retry_on_conflict(
                    partial(store_skip, self._uow, self._ids, inbound, skip, now, until))
            # The plan's quota counts replies the bot would send: asked after the skips.
            withheld = await self._withheld(inbound) if self._allowance is not None else None
            reply = withheld or await self._answer(conversation, inbound, history, profile)
        # ``sending``: a multi-part send cut off between parts resumes (the send use case
        # decides whether a part is still in flight and then sends nothing).
        if (reply.status in _UNSENT
                and (delay := await self._send_or_delay(
                    JustStored(reply, conversation, inbound.created_at)))
                is not None):
            payload = SendMessagePayload(reply.id)
            await self._queue.enqueue(
                SEND_MESSAGE,
                payload.to_payload(),
                dedup_key=payload.dedup_key,
                # The provider's Retry-After, when it gave one, holds for the handed-off job.
                delay_seconds=delay,
                headers={"correlation_id": inbound.provider_sid or inbound.id},
            )
        return reply

    async def _answer(self, conversation: Conversation, inbound: Message,
                      history: list[Message], profile: AssistantProfile) -> Message:
        images: list[Image] = []
        if image_keys(inbound):
            if not self._media.sees_images(profile.vision) or self._blobs is None:
                return await self._store_reply(inbound, UNSUPPORTED_IMAGE,
                                               {"unsupported": "image"})
            images = await load_images(self._blobs, inbound)
        # The responder may be slow (an LLM): no transaction is held while it runs.
        try:
            text = await self._responder.reply(conversation, inbound, history, profile,
                                               images)
        except ResponderFailed as failure:
            return await self._fallback(inbound, failure, profile)
        return await self._store_reply(inbound, text)

    async def _withheld(self, inbound: Message) -> Message | None:
        """The stored stand-in when the owner's plan allows no reply now (None: it does).

        Stored as the reply so the sweep does not queue the job again: the plan's notice
        (sent), or an empty canceled reply (never sent)."""
        assert self._allowance is not None
        allowance = await self._allowance.take(inbound.owner_id)
        if allowance.reply:
            return None
        log.info("reply to %s withheld: over the owner's quota", inbound.id,
                 extra={"notice": allowance.notice is not None})
        if allowance.notice:
            return await self._store_reply(inbound, allowance.notice, {"over_quota": True})
        return await self._store_reply(inbound, "", {"over_quota": True},
                                       status=DeliveryStatus.CANCELED)

    async def _send_or_delay(self, stored: JustStored) -> float | None:
        """Send in this job (None); else the delay of the send job to queue (0 when sending
        here is off, the provider's ``Retry-After`` when it failed retryably)."""
        if self._send_now is None:
            return 0.0
        try:
            await self._send_now.execute(SendMessagePayload(stored.message.id), stored)
        except DeliveryFailed as failure:
            # The claim was released: the send job retries it with backoff.
            log.warning("sending reply %s failed, queued for retry: %s", stored.message.id,
                        failure)
            return failure.retry_after or 0.0
        return None

    async def _fallback(
        self, inbound: Message, failure: ResponderFailed, profile: AssistantProfile
    ) -> Message:
        """Re-raise while a retry may still succeed; otherwise store the fallback reply."""
        if failure.retryable and not is_last_attempt():
            attempt = current_attempt()
            log.warning("no reply to %s yet (attempt %s), will retry: %s", inbound.id,
                        attempt.number if attempt else "?", failure)
            raise failure
        log.error("no reply to %s (%s): sending the fallback message", inbound.id,
                  "retries exhausted" if failure.retryable else "permanent failure",
                  extra={"error_code": failure.error_code})
        metadata = {"needs_person": True, "fallback_reason": failure.error_code or failure.code}
        return await retry_on_conflict(partial(
            self._store_reply, inbound,
            profile.fallback_message or self._policy.fallback_message, metadata))

    async def _context(
        self, uow: UnitOfWork, inbound: Message
    ) -> tuple[Conversation, list[Message]]:
        conversation = await uow.repository(ConversationRepository).get_by_id(
            inbound.conversation_id
        )
        if conversation is None:
            raise PermanentJobError(f"no conversation {inbound.conversation_id}")
        history = await uow.repository(MessageRepository).latest_for_conversation(
            conversation.id, self._policy.history_fetch_limit
        )
        return conversation, within_budget(history, inbound, self._policy.history_budget_chars)

    async def _store_reply(
        self, inbound: Message, answer: str | Reply, metadata: dict[str, object] | None = None,
        status: DeliveryStatus = DeliveryStatus.PENDING,
    ) -> Message:
        now = self._clock.now()
        reply = answer if isinstance(answer, Reply) else Reply(answer)
        extra: dict[str, Any] = dict(metadata or {})
        if reply.media_urls:
            extra["media"] = [{"url": url, "content_type": ""} for url in reply.media_urls]
        candidate = inbound.reply(
            self._ids.new_id(), reply.text, now, status=status, metadata=extra,
            type=MessageType.MEDIA if reply.media_urls else MessageType.TEXT,
        )
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            if await messages.add_if_new(candidate):
                if extra.get("needs_person") is True:
                    await self._flag(uow, inbound.conversation_id, now)
                await uow.commit()
                return candidate
            # A concurrent run of this job stored its reply first; use that one.
            existing = await messages.get_reply_to(inbound.id)
            if existing is None:  # pragma: no cover - the winner's row must be visible
                raise PermanentJobError(f"reply to {inbound.id} conflicted but is missing")
            log.info("reply to %s already stored as %s", inbound.id, existing.id)
            return existing

    @staticmethod
    async def _flag(uow: UnitOfWork, conversation_id: str, now: datetime) -> None:
        # Versioned: a racing write to the conversation fails the unit, which is retried.
        conversations = uow.repository(ConversationRepository)
        current = await conversations.get_by_id(conversation_id)
        if current is not None and not current.needs_person:
            await conversations.update(current.flagged_for_person(now))
