"""What the media jobs (download, transcription) share: the inbound message they work on,
recording one media item's outcome on it, and queueing the next step of its reply."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from application.errors import PermanentJobError
from application.ports.clock import Clock
from application.ports.job_queue import JobQueue
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from domain.message import TRANSCRIPT, Direction, Message


async def load_inbound(uow: UnitOfWork, message_id: str) -> Message:
    async with uow:
        message = await uow.repository(MessageRepository).get_by_id(message_id)
    if message is None or message.direction is not Direction.INBOUND:
        raise PermanentJobError(f"no inbound message {message_id}")
    return message


async def record_item(uow: UnitOfWork, clock: Clock, message_id: str, index: int,
                      fields: dict[str, Any]) -> None:
    """Merge ``fields`` into media item ``index`` at the message's version (a racing write
    raises ``ConcurrencyError``: the caller retries); the items' transcripts, joined, are
    what the message said."""
    async with uow:
        message = await uow.repository(MessageRepository).get_by_id(message_id)
        if message is None:
            raise PermanentJobError(f"inbound message {message_id} is gone")
        media = [dict(item) for item in message.metadata.get("media", [])]
        media[index].update(fields)
        metadata = {**message.metadata, "media": media}
        spoken = [str(m[TRANSCRIPT]) for m in media if m.get(TRANSCRIPT)]
        if spoken:
            metadata[TRANSCRIPT] = "\n".join(spoken)
        await uow.repository(MessageRepository).update(replace(
            message, metadata=metadata, updated_at=clock.now()))
        await uow.commit()


async def queue_step(queue: JobQueue, task: str, payload: dict[str, Any], dedup_key: str,
                     message: Message) -> None:
    await queue.enqueue(
        task, payload, dedup_key=dedup_key,
        headers={"correlation_id": message.provider_sid or message.id,
                 "owner_id": message.owner_id, "conversation_id": message.conversation_id},
    )
