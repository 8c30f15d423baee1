"""The periodic sweep: queue again the work of every stored message still waiting for it.

Two kinds of work can be lost: the reply to an inbound message (no reply stored yet), and
the send of a stored reply (still ``pending``: its send job never ran).

The database is the source of truth; a queue may lose a job (a Redis flush, a lost SQS
message). Re-queueing uses the same dedup key as ``ReceiveInboundMessage``, so a job that
is still waiting or running blocks the copy, and the handlers' idempotency (one reply per
message, the send claim) makes any copy that does run harmless. A message whose job was
dead-lettered is not lost: it waits in the dead-letter store for an operator, so the sweep
leaves it alone instead of failing it again every interval.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from application.ports.clock import Clock
from application.ports.job_queue import DeadLetterStore, JobQueue
from application.ports.message_repository import MessageRepository
from application.ports.repository import Condition
from application.ports.unit_of_work import UnitOfWork
from application.tasks import GENERATE_REPLY, SEND_MESSAGE, GenerateReplyPayload, SendMessagePayload
from domain.message import DeliveryStatus, Direction, Message

log = logging.getLogger(__name__)

# Dead letters read per sweep to recognise dead-lettered messages.
_DEAD_LETTERS_SCANNED = 1000


@dataclass(frozen=True, slots=True)
class StalledReplies:
    older_than: timedelta
    limit: int = 100


class RequeueStalledReplies:
    def __init__(
        self, uow: UnitOfWork, queue: JobQueue, dead_letters: DeadLetterStore, clock: Clock
    ) -> None:
        self._uow = uow
        self._queue = queue
        self._dead_letters = dead_letters
        self._clock = clock

    async def execute(self, request: StalledReplies) -> int:
        """Queue the jobs that were missing; returns how many were queued."""
        cutoff = self._clock.now() - request.older_than
        async with self._uow as uow:
            messages = uow.repository(MessageRepository)
            waiting = await messages.awaiting_reply(cutoff, request.limit)
            unsent = await messages.query(
                [
                    Condition("direction", "eq", Direction.OUTBOUND.value),
                    Condition("status", "eq", DeliveryStatus.PENDING.value),
                    Condition("created_at", "lt", cutoff),
                ],
                limit=request.limit,
            )
        if not waiting and not unsent.items:
            return 0
        dead = {d.dedup_key for d in await self._dead_letters.list_dead(_DEAD_LETTERS_SCANNED)}
        queued = 0
        for message in waiting:
            reply = GenerateReplyPayload(message.id)
            queued += await self._requeue(GENERATE_REPLY, reply.to_payload(), reply.dedup_key,
                                          message, dead)
        for message in unsent.items:
            send = SendMessagePayload(message.id)
            queued += await self._requeue(SEND_MESSAGE, send.to_payload(), send.dedup_key,
                                          message, dead)
        if queued:
            log.warning("sweep re-queued %d stalled job%s", queued, "" if queued == 1 else "s")
        return queued

    async def _requeue(
        self, task: str, payload: dict[str, str], dedup_key: str, message: Message,
        dead: set[str | None],
    ) -> int:
        if dedup_key in dead:
            return 0
        job_id = await self._queue.enqueue(
            task,
            payload,
            dedup_key=dedup_key,
            headers={"correlation_id": message.provider_sid or message.reply_to_id or message.id},
        )
        return 0 if job_id is None else 1
