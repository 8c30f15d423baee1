"""Apply a Twilio status callback without ever moving a status backwards.

A callback can beat its send's MessageSid into the database (Twilio calls back before the
worker has written the 201's sid). Such a callback is kept as a delayed ``apply_status``
job and tried again a few times, further apart each time (``EARLY_RETRY_DELAYS``); the
forward-only rule still decides, so a late ``sent`` never undoes a ``delivered``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from application.ports.clock import Clock
from application.ports.job_queue import JobQueue
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from application.tasks import APPLY_STATUS, ApplyStatusPayload
from domain.delivery_errors import explain
from domain.message import DeliveryStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    message_sid: str
    status: str
    error_code: str | None = None


# Seconds before each new try of a status whose MessageSid is not recorded yet. Parts of a
# long reply other than the last are never recorded by sid: these run out and are dropped.
EARLY_RETRY_DELAYS = (1.0, 2.0, 5.0, 15.0, 60.0)


class RecordDeliveryStatus:
    def __init__(self, uow: UnitOfWork, clock: Clock, queue: JobQueue | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._queue = queue

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
                log.info("status %s for unknown message %s: kept to retry", new,
                         request.message_sid)
                await self._keep(ApplyStatusPayload(request.message_sid, new.value,
                                                    request.error_code or None, 1))
                return False
            # The conditional write, not the read above, decides: racing callbacks are safe.
            changed = await messages.compare_and_set_status(
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

    async def _keep(self, payload: ApplyStatusPayload) -> None:
        if self._queue is None:
            return
        await self._queue.enqueue(
            APPLY_STATUS, payload.to_payload(), dedup_key=payload.dedup_key,
            delay_seconds=EARLY_RETRY_DELAYS[payload.tries - 1],
            headers={"correlation_id": payload.message_sid},
        )

    async def _explain(self, uow: UnitOfWork, message_id: str, code: str) -> None:
        """Store what the code means beside it (same transaction as the status)."""
        meaning = explain(code)
        message = await uow.repository(MessageRepository).get_by_id(message_id)
        if message is None:  # pragma: no cover - written in this very transaction
            return
        error = {"code": meaning.code, "outcome": str(meaning.outcome),
                 "meaning": meaning.meaning}
        await uow.repository(MessageRepository).update(
            replace(message, metadata={**message.metadata, "error": error}))
        log.info("message %s: Twilio error %s (%s)", message_id, code, meaning.meaning)


class ApplyEarlyStatus:
    """The ``apply_status`` job: the kept callback, applied once its sid is recorded."""

    def __init__(self, uow: UnitOfWork, clock: Clock, queue: JobQueue) -> None:
        self._uow = uow
        self._record = RecordDeliveryStatus(uow, clock)  # no queue: it re-keeps below
        self._queue = queue

    async def execute(self, request: ApplyStatusPayload) -> bool:
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            known = await messages.get_by_provider_sid(request.message_sid) is not None
        if known:
            return await self._record.execute(
                StatusUpdate(request.message_sid, request.status, request.error_code))
        if request.tries >= len(EARLY_RETRY_DELAYS):
            log.info("status %s for %s never matched a message; dropped", request.status,
                     request.message_sid)
            return False
        again = replace(request, tries=request.tries + 1)
        await self._queue.enqueue(
            APPLY_STATUS, again.to_payload(), dedup_key=again.dedup_key,
            delay_seconds=EARLY_RETRY_DELAYS[again.tries - 1],
            headers={"correlation_id": request.message_sid},
        )
        return False
