"""How the sweep finds the WhatsApp flow's lost work (``TaskSpec.stalled`` of its tasks).

Two kinds of work can be lost: the reply to an inbound message (no reply stored yet), and
the send of a stored reply (still ``pending``: its send job never ran). A reply waits for
its message's media download and voice-note transcription: when one of those jobs was
lost, the work starts again at that step, so the reply still sees the media.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from application.channel_policy import ChannelPolicy
from application.policy import MediaPolicy
from application.ports.message_repository import MessageRepository
from application.ports.repository import Condition
from application.ports.unit_of_work import UnitOfWork
from application.tasks import (
    DOWNLOAD_MEDIA,
    TRANSCRIBE_AUDIO,
    DownloadMediaPayload,
    GenerateReplyPayload,
    SendMessagePayload,
    StalledJob,
    TranscribeAudioPayload,
)
from application.use_cases.download_media import pending_media
from application.use_cases.transcribe_audio import untranscribed
from domain.message import DeliveryStatus, Direction, Message


def _correlation(message: Message) -> str:
    return message.provider_sid or message.reply_to_id or message.id


class RepliesNeverGenerated:
    """Inbound messages with no reply stored: their ``generate_reply`` job was lost.

    Only messages stored within the channel's window before ``before`` are looked at:
    past it a reply could not go out as text any more (only as the fallback template, a
    day late), and reading every message ever received each sweep grows without end.
    """

    def __init__(self, uow: UnitOfWork, media: MediaPolicy | None = None,
                 channel: ChannelPolicy | None = None) -> None:
        self._uow = uow
        self._media = media or MediaPolicy()
        self._window = (channel or ChannelPolicy()).window

    async def find(self, before: datetime, limit: int) -> Sequence[StalledJob]:
        async with self._uow as uow:
            waiting = await uow.repository(MessageRepository).awaiting_reply(
                before, limit, since=before - self._window)
        return [self._next_step(message) for message in waiting]

    def _next_step(self, message: Message) -> StalledJob:
        correlation = _correlation(message)
        if pending_media(message):
            download = DownloadMediaPayload(message.id)
            return StalledJob(download.to_payload(), download.dedup_key, correlation,
                              task=DOWNLOAD_MEDIA)
        if self._media.transcribe_audio and untranscribed(message):
            transcribe = TranscribeAudioPayload(message.id)
            return StalledJob(transcribe.to_payload(), transcribe.dedup_key, correlation,
                              task=TRANSCRIBE_AUDIO)
        payload = GenerateReplyPayload(message.id)
        return StalledJob(payload.to_payload(), payload.dedup_key, correlation)


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
