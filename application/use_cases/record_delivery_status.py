"""Apply a Twilio status callback without ever moving a status backwards."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from application.ports.clock import Clock
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from domain.message import DeliveryStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    message_sid: str
    status: str
    error_code: str | None = None


class RecordDeliveryStatus:
    def __init__(self, uow: UnitOfWork, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, request: StatusUpdate) -> bool:
        """True when the stored status changed; False for unknown, stale or unknown-sid."""
        try:
            new = DeliveryStatus(request.status.strip().lower())
        except ValueError:
            # Twilio adds statuses without notice; an unknown one must not fail the callback.
            log.warning("ignoring unknown status %r for %s", request.status, request.message_sid)
            return False
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            message = await messages.get_by_provider_sid(request.message_sid)
            if message is None:
                log.info("status %s for unknown message %s", new, request.message_sid)
                return False
            # The conditional write, not the read above, decides: racing callbacks are safe.
            changed = await messages.compare_and_set_status(
                message.id,
                new.predecessors(),
                new,
                self._clock.now(),
                error_code=request.error_code or None,
            )
            await uow.commit()
            return changed
