"""Hand a stored outbound message to the provider: each part at most once, in order.

A body over Twilio's 1,600 characters goes out as several messages (``TextSplitter``).
Before each part is sent it is claimed in one versioned write (the message moves
``pending`` -> ``sending`` on the first; ``metadata["parts"]`` records which part is in
flight), and its sid is recorded after, so:

- a redelivered or concurrent job loses the claim and sends nothing twice;
- a job that failed retryably, or died between two parts, resumes at the first unsent
  part when it runs again;
- a part whose outcome is unknown (a timeout after sending, a crash during the call)
  keeps the message claimed for a human: retrying could send it twice.

A claim or record whose write lost its answer (the database connection dropped on
commit) is written again for a while, not left to the job's retry: the run that claimed
a part knows it has not called the provider yet, and recognises its own claim by its
token; a later run could not tell it from a part whose outcome is unknown.

The claim is released only when the provider certainly did not take the part. Outside
the contact's 24-hour window free-form text is refused before calling the provider
(``WINDOW_CLOSED``); a reply then uses the fallback template when one is configured.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, Generic, TypeVar

from application.channel_policy import ChannelPolicy
from application.errors import (
    ConcurrencyError,
    DeliveryFailed,
    DeliveryUncertain,
    PermanentJobError,
    StorageUnavailable,
)
from application.ports.clock import Clock
from application.ports.message_repository import MessageRepository
from application.ports.message_sender import MessageSender, OutboundEnvelope
from application.ports.text_splitter import TextSplitter
from application.ports.unit_of_work import UnitOfWork
from application.tasks import SendMessagePayload
from application.use_cases.conversations import retry_on_conflict
from application.use_cases.send_gates import block_gate, hold_gate, window_gate
from domain.conversation import Conversation
from domain.delivery_errors import Outcome
from domain.message import DeliveryStatus, Direction, Message
from domain.outbound_parts import KEY as PARTS
from domain.outbound_parts import PartProgress
from domain.templates import Template

log = logging.getLogger(__name__)
T = TypeVar("T")

_CLAIMED = DeliveryStatus.SENDING
_ACCEPTED = DeliveryStatus.SENT
# How long a claim or record is written again while the database does not answer: a
# restart or failover. Past it the job fails; a claim then left in flight holds the message.
STORAGE_RETRY_DELAYS = (0.1, 0.2, 0.5, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0)


class _FirstTry(Generic[T]):
    """A row for the first attempt of a retried unit only: a later attempt, after the row
    moved on (a conflict) or a lost answer, reads it afresh."""

    __slots__ = ("_value",)

    def __init__(self, value: T | None) -> None:
        self._value = value

    def take(self) -> T | None:
        value, self._value = self._value, None
        return value


@dataclass(frozen=True, slots=True)
class JustStored:
    """What a caller that just stored the message has at hand, to save the claim's reads.

    Tried once: the claim writes the message and the conversation at these versions, so
    when either moved on meanwhile the write fails and the claim runs again on fresh rows.
    ``contact_wrote_at``: when the contact's message it answers was stored (inside the
    24-hour window, that alone shows the window open).
    """

    message: Message
    conversation: Conversation | None = None
    contact_wrote_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Claim:
    message: Message
    index: int
    envelope: OutboundEnvelope
    last: bool


class SendOutboundMessage:
    def __init__(
        self,
        uow: UnitOfWork,
        sender: MessageSender,
        clock: Clock,
        splitter: TextSplitter,
        channel: ChannelPolicy | None = None,
    ) -> None:
        self._uow = uow
        self._sender = sender
        self._clock = clock
        self._splitter = splitter
        self._channel = channel or ChannelPolicy()

    async def execute(self, request: SendMessagePayload,
                      just_stored: JustStored | None = None) -> DeliveryStatus:
        message_id = request.message_id
        token = secrets.token_hex(8)  # this run's claims
        hint = _FirstTry(just_stored if just_stored and just_stored.message.id == message_id
                         else None)
        while True:
            claim = await _stored(partial(self._claim_next, message_id, token, hint))
            if isinstance(claim, DeliveryStatus):
                return claim
            try:
                receipt = await self._sender.send(claim.envelope)
            except DeliveryFailed as failure:
                if failure.retryable:
                    await _stored(partial(self._release, message_id))
                    raise
                log.warning("provider refused message %s: %s", message_id, failure)
                return await _stored(partial(self._fail, message_id, failure))
            except DeliveryUncertain:
                # Retrying could send a second WhatsApp message; keep it claimed for a human.
                log.error("send of message %s part %d is unconfirmed; not retrying",
                          message_id, claim.index + 1)
                return _CLAIMED
            # The claimed row is the stored one unless a status callback raced ahead: the
            # first attempt writes at its version without reading it again.
            status = await _stored(partial(self._record, message_id, receipt.provider_sid,
                                           receipt.status, _FirstTry(claim.message)))
            if claim.last:
                return status

    async def _claim_next(self, message_id: str, token: str,
                          hint: _FirstTry[JustStored]) -> _Claim | DeliveryStatus:
        known = hint.take()
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            message = known.message if known else await messages.get_by_id(message_id)
            if message is None or message.direction is not Direction.OUTBOUND:
                raise PermanentJobError(f"no outbound message {message_id}")
            progress = PartProgress.from_metadata(message.metadata)
            if message.status is DeliveryStatus.PENDING and progress is None:
                message = await hold_gate(uow, message, self._clock.now(),
                                          known.conversation if known else None)
            if message.status is DeliveryStatus.PENDING:
                message = await block_gate(uow, message, self._clock.now())
                if message.status is DeliveryStatus.PENDING:
                    message = await window_gate(uow, message, self._clock.now(), self._channel,
                                                known.contact_wrote_at if known else None)
                if message.status.is_failure:
                    return message.status
                if progress is None:
                    progress = PartProgress(len(self._parts(message)))
            elif (message.status is _CLAIMED and progress is not None
                  and progress.claimed_by(token)):
                # This run's own claim, whose write lost its answer: nothing was sent yet.
                index = progress.next_index
                return _Claim(message, index, self._envelope(message, index),
                              index + 1 >= progress.total)
            elif not (message.status is _CLAIMED and progress is not None
                      and progress.in_flight is None and not progress.done):
                # Done, failed, or a part in flight (another job, or an unknown outcome).
                log.info("message %s already %s; not sending again", message_id, message.status)
                return message.status
            claimed = replace(
                message,
                status=_CLAIMED,
                updated_at=self._clock.now(),
                metadata={**message.metadata, PARTS: progress.claimed(token).to_metadata()},
            )
            # Versioned: of two racing claims of this part, one raises ConcurrencyError.
            claimed = await uow.repository(MessageRepository).update(claimed)
            await uow.commit()
        index = progress.next_index
        return _Claim(claimed, index, self._envelope(claimed, index), index + 1 >= progress.total)

    def _parts(self, message: Message) -> list[str]:
        if Template.from_metadata(message.metadata) is not None:
            return [""]  # a template is one request, whatever the body says
        return self._splitter.split(message.body)

    def _envelope(self, message: Message, index: int) -> OutboundEnvelope:
        template = Template.from_metadata(message.metadata)
        media: tuple[str, ...] = ()
        if index == 0:  # attachments go with the first part only
            media = tuple(m["url"] for m in message.metadata.get("media", []) if "url" in m)
        return OutboundEnvelope(
            owner_id=message.owner_id,
            from_address=message.from_address,
            to_address=message.to_address,
            body=self._parts(message)[index],
            media_urls=media,
            content_sid=template.content_sid if template else None,
            content_variables=template.variables if template else (),
        )

    async def _update_claimed(
        self, message_id: str, change: Any, known: _FirstTry[Message] | None = None
    ) -> Message:
        """Write ``change(message, progress)`` at the claimed message's version: the row as
        this run last stored it (``known``) when it has not moved on since, else as read."""
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            message = known.take() if known else None
            if message is not None:
                try:
                    return await self._write_claimed(uow, message_id, message, change)
                except ConcurrencyError:
                    await uow.rollback()
            return await self._write_claimed(
                uow, message_id, await messages.get_by_id(message_id), change)

    @staticmethod
    async def _write_claimed(uow: UnitOfWork, message_id: str, message: Message | None,
                             change: Any) -> Message:
        progress = PartProgress.from_metadata(message.metadata) if message else None
        if message is None or progress is None:
            raise PermanentJobError(f"claimed message {message_id} lost its progress")
        updated = await uow.repository(MessageRepository).update(change(message, progress))
        await uow.commit()
        return updated

    async def _release(self, message_id: str) -> None:
        def change(message: Message, progress: PartProgress) -> Message:
            # Back to pending: the sweep and the retry both find it as unsent work.
            return replace(message, status=DeliveryStatus.PENDING, updated_at=self._clock.now(),
                           metadata={**message.metadata, PARTS: progress.released().to_metadata()})

        await self._update_claimed(message_id, change)

    async def _record(self, message_id: str, sid: str, reported: DeliveryStatus,
                      known: _FirstTry[Message] | None = None) -> DeliveryStatus:
        def change(message: Message, progress: PartProgress) -> Message:
            progress = progress.recorded(sid)
            metadata = {**message.metadata, PARTS: progress.to_metadata()}
            if not progress.done:
                return replace(message, updated_at=self._clock.now(), metadata=metadata)
            # Twilio took the last part: at least ``sent``, even when its answer says
            # ``queued``. The row's sid is the last part's, so its callbacks say when the
            # whole reply was delivered.
            target = reported if _ACCEPTED.can_become(reported) else _ACCEPTED
            # Forward only: a callback that raced ahead of this answer is never undone.
            status = target if message.status.can_become(target) else message.status
            return replace(message, status=status, provider_sid=sid,
                           updated_at=self._clock.now(), metadata=metadata)

        return (await self._update_claimed(message_id, change, known)).status

    async def _fail(self, message_id: str, failure: DeliveryFailed) -> DeliveryStatus:
        def change(message: Message, progress: PartProgress) -> Message:
            error = {"code": failure.error_code, "outcome": str(failure.outcome),
                     "meaning": str(failure)}
            return replace(message, status=DeliveryStatus.FAILED,
                           error_code=failure.error_code or str(failure.outcome).upper(),
                           updated_at=self._clock.now(),
                           metadata={**message.metadata, "error": error,
                                     PARTS: progress.released().to_metadata()})

        await self._update_claimed(message_id, change)
        if failure.outcome is Outcome.BAD_CREDENTIALS:
            log.error("message %s failed: the account's credentials were refused", message_id)
        return DeliveryStatus.FAILED


async def _stored(unit: Callable[[], Awaitable[T]]) -> T:
    """Run a write unit through lost answers (``StorageUnavailable``) and racing writes."""
    for delay in STORAGE_RETRY_DELAYS:
        try:
            return await retry_on_conflict(unit)
        except StorageUnavailable as error:
            log.warning("storage did not answer (%s); writing again in %.1fs", error, delay)
            await asyncio.sleep(delay)
    return await retry_on_conflict(unit)
