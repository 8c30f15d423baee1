"""Download an inbound message's media into the blob store, then queue its reply.

Each item is fetched with the account's credentials and stored under
``<owner>/<message id>/<index>``; its blob key (or why it was refused) is recorded on the
item as soon as it is stored, so a retried job fetches only what is still missing. A
refused item (too large, a type not allowed, gone) is recorded and skipped; a provider or
store that is down fails the job, which is retried with backoff and never holds up other
messages' jobs. The reply is queued once every item is settled: it sees the blob keys.
With ``MediaPolicy.transcribe_audio``, a message carrying audio goes to the
``transcribe_audio`` job instead, which queues the reply once it has the transcript.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from application.policy import MediaPolicy
from application.ports.assistant_profiles import AssistantProfiles, SameForEveryOwner
from application.ports.blob_store import BlobStore
from application.ports.clock import Clock
from application.ports.job_queue import JobQueue
from application.ports.media_fetcher import MediaFetcher, MediaRejected
from application.ports.unit_of_work import UnitOfWork
from application.tasks import (
    GENERATE_REPLY,
    TRANSCRIBE_AUDIO,
    DownloadMediaPayload,
    GenerateReplyPayload,
    TranscribeAudioPayload,
)
from application.use_cases.conversations import retry_on_conflict
from application.use_cases.inbound_media import load_inbound, queue_step, record_item
from application.use_cases.transcribe_audio import audio_items
from domain.message import Message

log = logging.getLogger(__name__)
NOT_IN_PLAN = "media is not in the owner's plan"


def pending_media(message: Message) -> list[int]:
    """Indexes of the items neither stored nor refused yet."""
    items = message.metadata.get("media") or []
    return [i for i, item in enumerate(items)
            if isinstance(item, dict) and "blob_key" not in item and "error" not in item]


class DownloadInboundMedia:
    def __init__(
        self,
        uow: UnitOfWork,
        fetcher: MediaFetcher,
        blobs: BlobStore,
        queue: JobQueue,
        clock: Clock,
        media: MediaPolicy | None = None,
        profiles: AssistantProfiles | None = None,
    ) -> None:
        self._uow = uow
        self._profiles = profiles or SameForEveryOwner()
        self._media = media or MediaPolicy()
        self._fetcher = fetcher
        self._blobs = blobs
        self._queue = queue
        self._clock = clock

    async def execute(self, request: DownloadMediaPayload) -> list[str]:
        message = await load_inbound(self._uow, request.message_id)
        allowed = (await self._profiles.for_owner(message.owner_id)).media
        for index in pending_media(message):
            if not allowed:  # the owner's plan has no media: the reply sees none
                await retry_on_conflict(partial(self._record_item, message.id, index,
                                                {"error": NOT_IN_PLAN}))
                continue
            item = message.metadata["media"][index]
            key = f"{message.owner_id}/{message.id}/{index}"
            try:
                fetched = await self._fetcher.fetch(str(item.get("url", "")),
                                                   message.owner_id)
            except MediaRejected as refused:
                log.warning("media %d of %s refused: %s", index, message.id, refused)
                await retry_on_conflict(partial(self._record_item, message.id, index,
                                                {"error": str(refused)}))
                continue
            # MediaUnavailable and BlobStoreUnavailable fail the job: it is retried.
            await self._blobs.put(key, fetched.data, fetched.content_type)
            await retry_on_conflict(partial(
                self._record_item, message.id, index,
                {"blob_key": key, "stored_type": fetched.content_type,
                 "size": len(fetched.data)}))
        final = await load_inbound(self._uow, request.message_id)
        # A voice note is transcribed first; that job queues the reply in turn.
        next_job: GenerateReplyPayload | TranscribeAudioPayload = GenerateReplyPayload(message.id)
        task = GENERATE_REPLY
        if self._media.transcribe_audio and audio_items(final):
            next_job, task = TranscribeAudioPayload(message.id), TRANSCRIBE_AUDIO
        await queue_step(self._queue, task, next_job.to_payload(), next_job.dedup_key, final)
        return [str(i["blob_key"]) for i in final.metadata.get("media", []) if "blob_key" in i]

    async def _record_item(self, message_id: str, index: int, fields: dict[str, Any]) -> None:
        await record_item(self._uow, self._clock, message_id, index, fields)
