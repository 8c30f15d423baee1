"""The WhatsApp conversation flow, declared as a module like any other."""

from __future__ import annotations

from datetime import timedelta

from application.tasks import (
    GENERATE_REPLY,
    SEND_MESSAGE,
    GenerateReplyPayload,
    PeriodicSpec,
    Resolver,
    SendMessagePayload,
    TaskSpec,
)
from application.use_cases.generate_reply import GenerateReply
from application.use_cases.requeue_stalled import RequeueStalledReplies, StalledReplies
from application.use_cases.send_outbound import SendOutboundMessage
from bootstrap.module import Module
from bootstrap.settings import Settings


class SweepStalledWork:
    """The sweep as a periodic use case: recovers the work of messages older than
    ``WORKER_SWEEP_AFTER_SECONDS`` that a queue lost. Safe on several workers at once: it
    re-queues under the jobs' own dedup keys and the handlers are idempotent."""

    def __init__(self, requeue: RequeueStalledReplies, settings: Settings) -> None:
        self._requeue = requeue
        self._request = StalledReplies(
            older_than=timedelta(seconds=settings.worker_sweep_after_seconds))

    async def execute(self) -> int:
        return await self._requeue.execute(self._request)


def _sweep_interval(resolve: Resolver) -> float:
    # A setting, read when a worker starts: WORKER_SWEEP_INTERVAL_SECONDS (0: off).
    return resolve(Settings).worker_sweep_interval_seconds


MODULE = Module(
    name="whatsapp",
    tasks=(
        TaskSpec(GENERATE_REPLY, GenerateReplyPayload, GenerateReply),
        TaskSpec(SEND_MESSAGE, SendMessagePayload, SendOutboundMessage),
    ),
    periodic=(PeriodicSpec("sweep", _sweep_interval, SweepStalledWork),),
)
