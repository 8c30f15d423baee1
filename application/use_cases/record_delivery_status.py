"""Apply a Twilio status callback without ever moving a status backwards."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from application.ports.clock import Clock
from application.ports.unit_of_work import UnitOfWork
from domain.delivery_errors import explain
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
            message = await uow.messages.get_by_provider_sid(request.message_sid)
            if message is None:
                log.info("status %s for unknown message %s", new, request.message_sid)
                return False
            # The conditional write, not the read above, decides: racing callbacks are safe.
            changed = await uow.messages.compare_and_set_status(
                message.id,
                new.predecessors(),
                new,
                self._clock.now(),
                error_code=request.error_code or None,
            )
            if changed and request.error_code:
                await self._explain(uow, message.id, request.error_code)
            await uow.commit()
            return changed

    async def _explain(self, uow: UnitOfWork, message_id: str, code: str) -> None:
        """Store what the code means beside it (same transaction as the status)."""
        meaning = explain(code)
        message = await uow.messages.get_by_id(message_id)
        if message is None:  # pragma: no cover - written in this very transaction
            return
        error = {"code": meaning.code, "outcome": str(meaning.outcome),
                 "meaning": meaning.meaning}
        await uow.messages.update(replace(message, metadata={**message.metadata, "error": error}))
        log.info("message %s: Twilio error %s (%s)", message_id, code, meaning.meaning)
