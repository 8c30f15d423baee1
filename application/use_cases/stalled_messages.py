"""How the sweep finds the WhatsApp flow's lost work (``TaskSpec.stalled`` of its tasks).

Two kinds of work can be lost: the reply to an inbound message (no reply stored yet), and
the send of a stored reply (still ``pending``: its send job never ran).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from application.ports.message_repository import MessageRepository
from application.ports.repository import Condition
from application.ports.unit_of_work import UnitOfWork
from application.tasks import GenerateReplyPayload, SendMessagePayload, StalledJob
from domain.message import DeliveryStatus, Direction, Message


def _correlation(message: Message) -> str:
    return message.provider_sid or message.reply_to_id or message.id


class RepliesNeverGenerated:
    """Inbound messages with no reply stored: their ``generate_reply`` job was lost."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def find(self, before: datetime, limit: int) -> Sequence[StalledJob]:
        async with self._uow as uow:
            waiting = await uow.repository(MessageRepository).awaiting_reply(before, limit)
        jobs = []
        for message in waiting:
            payload = GenerateReplyPayload(message.id)
            jobs.append(StalledJob(payload.to_payload(), payload.dedup_key, _correlation(message)))
        return jobs


class RepliesNeverSent:
    """Stored replies still ``pending``: their ``send_message`` job never ran."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def find(self, before: datetime, limit: int) -> Sequence[StalledJob]:
        async with self._uow as uow:
            unsent = await uow.repository(MessageRepository).query(
                [
                    Condition("direction", "eq", Direction.OUTBOUND.value),
                    Condition("status", "eq", DeliveryStatus.PENDING.value),
                    Condition("created_at", "lt", before),
                ],
                limit=limit,
            )
        jobs = []
        for message in unsent.items:
            payload = SendMessagePayload(message.id)
            jobs.append(StalledJob(payload.to_payload(), payload.dedup_key, _correlation(message)))
        return jobs
