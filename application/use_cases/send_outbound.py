"""Hand a stored outbound message to the provider, at most once.

The message is claimed (``pending`` -> ``sending``) in one conditional write before the
provider is called, so a redelivered or concurrent job finds it claimed and sends nothing.
The claim is released only when the provider certainly did not take the message.
"""

from __future__ import annotations

import logging

from application.errors import DeliveryFailed, DeliveryUncertain, PermanentJobError
from application.ports.clock import Clock
from application.ports.message_repository import MessageRepository
from application.ports.message_sender import MessageSender, OutboundEnvelope
from application.ports.unit_of_work import UnitOfWork
from application.tasks import SendMessagePayload
from domain.message import DeliveryStatus, Direction, Message

log = logging.getLogger(__name__)

_CLAIMED = DeliveryStatus.SENDING
_ACCEPTED = DeliveryStatus.SENT


class SendOutboundMessage:
    def __init__(self, uow: UnitOfWork, sender: MessageSender, clock: Clock) -> None:
        self._uow = uow
        self._sender = sender
        self._clock = clock

    async def execute(self, request: SendMessagePayload) -> DeliveryStatus:
        message = await self._claim(request.message_id)
        if message is None:
            return await self._current_status(request.message_id)
        envelope = OutboundEnvelope(
            owner_id=message.owner_id,
            from_address=message.from_address,
            to_address=message.to_address,
            body=message.body,
            media_urls=tuple(m["url"] for m in message.metadata.get("media", [])),
        )
        try:
            receipt = await self._sender.send(envelope)
        except DeliveryFailed as failure:
            if failure.retryable:
                await self._set(message.id, DeliveryStatus.PENDING)
                raise
            log.warning("provider refused message %s: %s", message.id, failure)
            await self._set(message.id, DeliveryStatus.FAILED, error_code=failure.error_code)
            return DeliveryStatus.FAILED
        except DeliveryUncertain:
            # Retrying could send a second WhatsApp message; keep it claimed for a human.
            log.error("send of message %s is unconfirmed; not retrying", message.id)
            return _CLAIMED
        # Twilio took it (a sid came back): at least ``sent``, even when its answer says
        # ``queued``; a later status it reports (delivered, failed) is kept. Forward only,
        # so a callback that raced ahead is never undone.
        status = receipt.status if _ACCEPTED.can_become(receipt.status) else _ACCEPTED
        await self._set(message.id, status, provider_sid=receipt.provider_sid)
        return status

    async def _claim(self, message_id: str) -> Message | None:
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            message = await messages.get_by_id(message_id)
            if message is None or message.direction is not Direction.OUTBOUND:
                raise PermanentJobError(f"no outbound message {message_id}")
            if message.status is not DeliveryStatus.PENDING:
                log.info("message %s already %s; not sending again", message_id, message.status)
                return None
            claimed = await messages.compare_and_set_status(
                message_id, {DeliveryStatus.PENDING}, _CLAIMED, self._clock.now()
            )
            await uow.commit()
            return message if claimed else None

    async def _current_status(self, message_id: str) -> DeliveryStatus:
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            message = await messages.get_by_id(message_id)
            return message.status if message else DeliveryStatus.FAILED

    async def _set(
        self,
        message_id: str,
        status: DeliveryStatus,
        *,
        provider_sid: str | None = None,
        error_code: str | None = None,
    ) -> None:
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            await messages.compare_and_set_status(
                message_id,
                {_CLAIMED},
                status,
                self._clock.now(),
                provider_sid=provider_sid,
                error_code=error_code,
            )
            await uow.commit()
