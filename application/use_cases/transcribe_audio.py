"""Transcribe an inbound voice note, then queue its reply: the model answers what was said.

Runs after the media download when transcription is on and the message carries stored
audio. Each audio item's transcript is recorded on the item as soon as it is known (a
retried job transcribes only what is missing), and the joined text goes to
``metadata["transcript"]``, which ``Message.said`` gives the responder. A transcription
that fails for good, or on the job's last attempt, is recorded as an error and the reply
is still generated (from whatever the message says), so the contact is never left
without one.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from application.attempt import is_last_attempt
from application.ports.blob_store import BlobStore
from application.ports.clock import Clock
from application.ports.job_queue import JobQueue
from application.ports.transcriber import Transcriber, TranscriptionFailed
from application.ports.unit_of_work import UnitOfWork
from application.tasks import GENERATE_REPLY, GenerateReplyPayload, TranscribeAudioPayload
from application.use_cases.conversations import retry_on_conflict
from application.use_cases.inbound_media import load_inbound, queue_step, record_item
from domain.inbound_content import MediaKind
from domain.message import TRANSCRIPT, Message

log = logging.getLogger(__name__)


def audio_items(message: Message) -> list[int]:
    """Indexes of the stored audio items (downloaded, with a blob key)."""
    return [i for i, item in enumerate(message.metadata.get("media") or [])
            if isinstance(item, dict) and "blob_key" in item
            and MediaKind.of(str(item.get("stored_type") or item.get("content_type") or ""))
            is MediaKind.AUDIO]


def untranscribed(message: Message) -> list[int]:
    """Indexes of the stored audio items with neither a transcript nor its error yet."""
    media = message.metadata.get("media") or []
    return [i for i in audio_items(message)
            if TRANSCRIPT not in media[i] and "transcript_error" not in media[i]]


class TranscribeAudio:
    def __init__(
        self,
        uow: UnitOfWork,
        blobs: BlobStore,
        transcriber: Transcriber,
        queue: JobQueue,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._blobs = blobs
        self._transcriber = transcriber
        self._queue = queue
        self._clock = clock

    async def execute(self, request: TranscribeAudioPayload) -> str:
        message = await load_inbound(self._uow, request.message_id)
        for index in untranscribed(message):
            item = message.metadata["media"][index]
            blob = await self._blobs.get(str(item["blob_key"]))
            if blob is None:
                await retry_on_conflict(partial(
                    self._record_item, message.id, index, {"transcript_error": "blob missing"}))
                continue
            try:
                text = await self._transcriber.transcribe(blob.data, blob.content_type)
            except TranscriptionFailed as failure:
                if failure.retryable and not is_last_attempt():
                    raise
                log.warning("voice note %d of %s not transcribed: %s", index, message.id,
                            failure)
                await retry_on_conflict(partial(
                    self._record_item, message.id, index, {"transcript_error": str(failure)}))
                continue
            await retry_on_conflict(partial(
                self._record_item, message.id, index, {TRANSCRIPT: text.strip()}))
        final = await load_inbound(self._uow, request.message_id)
        payload = GenerateReplyPayload(final.id)
        await queue_step(self._queue, GENERATE_REPLY, payload.to_payload(), payload.dedup_key,
                         final)
        return str(final.metadata.get(TRANSCRIPT, ""))

    async def _record_item(self, message_id: str, index: int, fields: dict[str, Any]) -> None:
        await record_item(self._uow, self._clock, message_id, index, fields)
