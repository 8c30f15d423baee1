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
``needs_person`` in its metadata so the read API shows the conversation needs a person.
"""

from __future__ import annotations

import logging
from typing import Any

from application.attempt import current_attempt, is_last_attempt
from application.errors import DeliveryFailed, PermanentJobError
from application.history import within_budget
from application.policy import AssistantPolicy
from application.ports.clock import Clock
from application.ports.conversation_repository import ConversationRepository
from application.ports.id_generator import IdGenerator
from application.ports.job_queue import JobQueue
from application.ports.message_repository import MessageRepository
from application.ports.reply_allowance import ReplyAllowance
from application.ports.responder import Reply, Responder, ResponderFailed
from application.ports.unit_of_work import UnitOfWork
from application.tasks import SEND_MESSAGE, GenerateReplyPayload, SendMessagePayload
from application.use_cases.send_outbound import SendOutboundMessage
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
        allowance: ReplyAllowance | None = None,
    ) -> None:
        self._uow = uow
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
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            inbound = await messages.get_by_id(request.message_id)
            if inbound is None or inbound.direction is not Direction.INBOUND:
                raise PermanentJobError(f"no inbound message {request.message_id}")
            reply = await messages.get_reply_to(inbound.id)
            if reply is None:
                conversation, history = await self._context(uow, inbound)
        if reply is None and self._allowance is not None:
            reply = await self._withheld(inbound)
        if reply is None:
            # The responder may be slow (an LLM): no transaction is held while it runs.
            try:
                text = await self._responder.reply(conversation, inbound, history)
            except ResponderFailed as failure:
                reply = await self._fallback(inbound, failure)
            else:
                reply = await self._store_reply(inbound, text)
        # ``sending``: a multi-part send cut off between parts resumes (the send use case
        # decides whether a part is still in flight and then sends nothing).
        if reply.status in _UNSENT and (delay := await self._send_or_delay(reply)) is not None:
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

    async def _send_or_delay(self, reply: Message) -> float | None:
        """Send in this job (None); else the delay of the send job to queue (0 when sending
        here is off, the provider's ``Retry-After`` when it failed retryably)."""
        if self._send_now is None:
            return 0.0
        try:
            await self._send_now.execute(SendMessagePayload(reply.id))
        except DeliveryFailed as failure:
            # The claim was released: the send job retries it with backoff.
            log.warning("sending reply %s failed, queued for retry: %s", reply.id, failure)
            return failure.retry_after or 0.0
        return None

    async def _fallback(self, inbound: Message, failure: ResponderFailed) -> Message:
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
        return await self._store_reply(inbound, self._policy.fallback_message, metadata)

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
        candidate = Message(
            id=self._ids.new_id(),
            conversation_id=inbound.conversation_id,
            owner_id=inbound.owner_id,
            direction=Direction.OUTBOUND,
            type=MessageType.MEDIA if reply.media_urls else MessageType.TEXT,
            body=reply.text,
            from_address=inbound.to_address,
            to_address=inbound.from_address,
            status=status,
            created_at=now,
            updated_at=now,
            reply_to_id=inbound.id,
            metadata=extra,
        )
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            if await messages.add_if_new(candidate):
                await uow.commit()
                return candidate
            # A concurrent run of this job stored its reply first; use that one.
            existing = await messages.get_reply_to(inbound.id)
            if existing is None:  # pragma: no cover - the winner's row must be visible
                raise PermanentJobError(f"reply to {inbound.id} conflicted but is missing")
            log.info("reply to %s already stored as %s", inbound.id, existing.id)
            return existing
