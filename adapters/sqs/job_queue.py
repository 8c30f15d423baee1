"""SqsJobQueue: the job queue ports on AWS SQS, for the project's worker runner.

- Ids and receipt handles. ``Job.id`` is our ULID, carried in the body, stable across
  deliveries. The receipt handle of each job this instance holds is kept in memory, keyed
  by job id together with the attempt it was delivered as: a stale ``Job`` (its lease
  expired and this instance received the message again) can no longer touch it.
- Attempts are SQS's own ApproximateReceiveCount, minus the receives that only deferred a
  delayed job (see ``_deferrals``). A retry is a ChangeMessageVisibility to the delay, so
  the same message comes back with its count one higher.
- Delays: DelaySeconds on a standard queue (900 s at most); a FIFO queue has no
  per-message delay, and longer delays do not fit DelaySeconds, so the due time travels in
  the body and a receive that gets a job early hides it again until it is due.
- Dedup: see ``enqueue``. Dead letters: ``SqsDeadLetters``.
- A cancelled receive cannot cancel its long poll on SQS's side: the request is left to
  finish and the next receive hands out what it took (instead of leaving those messages
  invisible for a whole lease and counting a receive nobody saw).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from adapters.sqs import codec
from adapters.sqs.client import MAX_WAIT_SECONDS, LeaseLost, SqsClient
from adapters.sqs.dead_letters import SqsDeadLetters
from adapters.sqs.dead_letters import dead_letter_queue_url as default_dlq_url
from adapters.sqs.dedup import KeyRecord
from application.errors import QueueUnavailable
from application.ports.job_queue import DeadLetter, Job
from domain.ids import new_ulid

log = logging.getLogger(__name__)

MAX_VISIBILITY = 43_200  # SQS: 12 hours
MAX_DELAY = 900  # SQS DelaySeconds
_SYSTEM_ATTRIBUTES = ["ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp",
                      "SentTimestamp"]
_Received = tuple[float, dict[str, Any]]  # (monotonic time the receive was sent, message)


@dataclass(slots=True)
class _Held:
    attempt: int
    receipt: str
    lease_until: float  # monotonic; before it, SQS cannot have given the message to anyone


def _seconds(value: float, minimum: int) -> int:
    """SQS takes whole seconds: round up, so a lease or delay is never shorter."""
    return min(MAX_VISIBILITY, max(minimum, math.ceil(value)))


def _deferrals(not_before: float | None, first_receive_ms: str | None) -> int:
    """How many receives only hid a delayed job again (each for up to 12 h).

    Derived from values fixed at the first receive, so every consumer agrees on it.
    """
    if not_before is None or first_receive_ms is None:
        return 0
    first = int(first_receive_ms) / 1000
    return 0 if first >= not_before else math.ceil((not_before - first) / MAX_VISIBILITY)


class SqsJobQueue:
    """JobQueue, JobConsumer and DeadLetterStore on an SQS queue (standard or FIFO)."""

    def __init__(
        self,
        queue_url: str,
        *,
        dead_letter_queue_url: str | None = None,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        max_attempts: int = 5,
        visibility_timeout: float = 60.0,
        dedup_retention_seconds: float = 3600.0,
        max_payload_bytes: int = codec.DEFAULT_MAX_MESSAGE_BYTES,
        confirm_empty_seconds: int = 1,
    ) -> None:
        self.queue_url = queue_url
        self.fifo = queue_url.endswith(".fifo")
        self.max_attempts = max_attempts
        self.visibility_timeout = float(_seconds(visibility_timeout, 1))
        self.dedup_retention_seconds = dedup_retention_seconds
        self.max_payload_bytes = max_payload_bytes
        # Nothing connects here: the client is created on first use.
        self._client = SqsClient(region=region, endpoint_url=endpoint_url,
                                 access_key_id=access_key_id,
                                 secret_access_key=secret_access_key)
        self._dead = SqsDeadLetters(
            self._client, dead_letter_queue_url or default_dlq_url(queue_url),
            max_payload_bytes=max_payload_bytes, confirm_empty_seconds=confirm_empty_seconds,
        )
        self._keys = KeyRecord()
        self._held: dict[str, _Held] = {}
        self._orphans: set[asyncio.Future[dict[str, Any]]] = set()
        self._adopted: list[_Received] = []
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise QueueUnavailable("SQS queue is closed")

    # -- JobQueue ---------------------------------------------------------------------

    async def enqueue(
        self,
        task: str,
        payload: Mapping[str, Any],
        *,
        dedup_key: str | None = None,
        delay_seconds: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> str | None:
        """Send one message; see the module docstring for delays.

        Dedup: this instance holds a key from its enqueue until ``dedup_retention_seconds``
        after the job is done here (or after it was due, for a job another process runs)
        and returns None for it. On a FIFO queue SQS also drops any second send of the key,
        from any process, within 5 minutes of the first; that drop is silent, so the other
        process gets an id back. A standard queue has only the in-process part.
        """
        self._check_open()
        codec.check_job(task, payload, headers)
        delay = max(0.0, delay_seconds)
        now = time.time()
        envelope = codec.Envelope(
            id=new_ulid(), task=task, payload=dict(payload), headers=dict(headers or {}),
            dedup_key=dedup_key, enqueued_at=now, not_before=now + delay if delay else None,
        )
        if dedup_key is not None:
            hold = time.monotonic() + delay + self.dedup_retention_seconds
            if not self._keys.claim(dedup_key, hold):
                return None
        try:
            await self._send(envelope, codec.dedup_id(dedup_key) if dedup_key else envelope.id)
        except BaseException:
            if dedup_key is not None:
                self._keys.release(dedup_key)
            raise
        return envelope.id

    async def _send(self, envelope: codec.Envelope, dedup_id: str) -> None:
        body = envelope.body()
        attributes = codec.header_attributes(envelope.headers)
        codec.check_size(envelope.task, body, attributes, self.max_payload_bytes)
        params: dict[str, Any] = {"QueueUrl": self.queue_url, "MessageBody": body}
        if attributes:
            params["MessageAttributes"] = attributes
        if self.fifo:
            # One group per job: FIFO is used for dedup only, never to serialise jobs.
            params.update(MessageGroupId=envelope.id, MessageDeduplicationId=dedup_id)
        elif envelope.not_before is not None:
            remaining = envelope.not_before - time.time()
            params["DelaySeconds"] = min(MAX_DELAY, max(0, math.ceil(remaining)))
        await self._client.call("send_message", **params)

    # -- JobConsumer: receiving ---------------------------------------------------------

    async def receive(self, max_jobs: int, wait_seconds: float) -> list[Job]:
        if max_jobs <= 0:
            return []
        self._check_open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait_seconds)
        while True:
            await self._collect_orphans()
            received = self._take_adopted(max_jobs)
            if not received:
                remaining = deadline - loop.time()
                wait = 0 if remaining <= 0 else min(MAX_WAIT_SECONDS, math.ceil(remaining))
                received = await self._poll(max_jobs, wait)
            jobs = await self._accept(received)
            if jobs or loop.time() >= deadline:
                return jobs

    async def _poll(self, max_jobs: int, wait: int) -> list[_Received]:
        params: dict[str, Any] = {
            "QueueUrl": self.queue_url, "MaxNumberOfMessages": min(10, max_jobs),
            "WaitTimeSeconds": wait, "VisibilityTimeout": int(self.visibility_timeout),
            "MessageSystemAttributeNames": _SYSTEM_ATTRIBUTES, "MessageAttributeNames": ["All"],
        }
        if self.fifo:  # lets botocore's own retries get the same messages back
            params["ReceiveRequestAttemptId"] = uuid.uuid4().hex
        started = time.monotonic()
        request = asyncio.ensure_future(self._client.call("receive_message", **params))
        try:
            response = await asyncio.shield(request)
        except asyncio.CancelledError:
            self._orphans.add(request)
            request.add_done_callback(partial(self._adopt, started))
            raise
        return [(started, m) for m in response.get("Messages", [])]

    def _adopt(self, started: float, request: asyncio.Future[dict[str, Any]]) -> None:
        self._orphans.discard(request)
        if request.cancelled() or request.exception() is not None:
            return  # messages it may have taken come back after their lease
        self._adopted += [(started, m) for m in request.result().get("Messages", [])]

    async def _collect_orphans(self) -> None:
        if self._orphans:
            # Not cancelled with us: asyncio.wait leaves the requests running.
            await asyncio.wait(set(self._orphans))

    def _take_adopted(self, max_jobs: int) -> list[_Received]:
        # A message held past its lease may already be someone else's: leave it to SQS.
        now = time.monotonic()
        fresh = [r for r in self._adopted if r[0] + self.visibility_timeout > now]
        taken, self._adopted = fresh[:max_jobs], fresh[max_jobs:]
        return taken

    async def _accept(self, received: list[_Received]) -> list[Job]:
        jobs: list[Job] = []
        defer: list[dict[str, Any]] = []
        now, mono = time.time(), time.monotonic()
        for started, message in received:
            try:
                envelope = codec.decode(message["Body"])
            except (ValueError, KeyError, TypeError):
                await self._quarantine(message)
                continue
            system = message.get("Attributes", {})
            count = int(system.get("ApproximateReceiveCount", "1"))
            deferrals = _deferrals(envelope.not_before, system.get(
                "ApproximateFirstReceiveTimestamp"))
            due = envelope.not_before
            if due is not None and (count <= deferrals or now < due):
                defer.append({"ReceiptHandle": message["ReceiptHandle"],
                              "VisibilityTimeout": _seconds(due - now, 1)})
                continue
            attempt = max(1, count - deferrals)
            held = self._held.get(envelope.id)
            if held is not None and held.lease_until > mono:
                # A second copy while our lease runs (a standard queue may deliver twice):
                # keep the newest handle, which is the one SQS honours, and run it once.
                held.receipt = message["ReceiptHandle"]
                continue
            self._held[envelope.id] = _Held(attempt, message["ReceiptHandle"],
                                            started + self.visibility_timeout)
            if envelope.dedup_key is not None:
                self._keys.hold(envelope.dedup_key, mono + self.dedup_retention_seconds)
            jobs.append(Job(
                id=envelope.id, task=envelope.task, payload=envelope.payload,
                attempt=attempt, max_attempts=self.max_attempts,
                enqueued_at=datetime.fromtimestamp(envelope.enqueued_at, UTC),
                dedup_key=envelope.dedup_key, headers=envelope.headers,
            ))
        if defer:
            await self._client.batch("change_message_visibility_batch", self.queue_url, defer)
        return jobs

    async def _quarantine(self, message: dict[str, Any]) -> None:
        log.error("SQS message %s is not a job envelope; moved to the dead letters",
                  message.get("MessageId"))
        await self._dead.add_raw(message, "undecodable message body")
        with contextlib.suppress(LeaseLost):
            await self._client.call("delete_message", QueueUrl=self.queue_url,
                                    ReceiptHandle=message["ReceiptHandle"])

    # -- JobConsumer: settling ------------------------------------------------------------

    def _holding(self, job: Job) -> _Held | None:
        held = self._held.get(job.id)
        if held is None or held.attempt != job.attempt:
            log.warning("job %s attempt %s is no longer held; ignored", job.id, job.attempt)
            return None
        return held

    async def _settle(self, job: Job, operation: str, **params: Any) -> bool:
        """Run one call on the held message; False (and forget it) if the lease was lost."""
        held = self._holding(job)
        if held is None:
            return False
        try:
            await self._client.call(operation, QueueUrl=self.queue_url,
                                    ReceiptHandle=held.receipt, **params)
        except LeaseLost:
            log.warning("job %s attempt %s lost its lease; ignored", job.id, job.attempt)
            self._held.pop(job.id, None)
            return False
        return True

    async def ack(self, job: Job) -> None:
        self._check_open()
        if await self._settle(job, "delete_message"):
            self._held.pop(job.id, None)
            if job.dedup_key is not None:
                self._keys.hold(job.dedup_key, time.monotonic() + self.dedup_retention_seconds)

    async def retry(self, job: Job, error: str, delay_seconds: float) -> None:
        """Hide the message for the delay (12 h at most); it returns with attempt + 1."""
        self._check_open()
        visibility = _seconds(delay_seconds, 0)
        if await self._settle(job, "change_message_visibility", VisibilityTimeout=visibility):
            self._held.pop(job.id, None)

    async def extend_lease(self, job: Job, seconds: float) -> None:
        self._check_open()
        start = time.monotonic()
        renewed = await self._settle(job, "change_message_visibility",
                                     VisibilityTimeout=_seconds(seconds, 1))
        if renewed and (held := self._held.get(job.id)) is not None:
            held.lease_until = start + seconds

    async def dead_letter(self, job: Job, error: str) -> None:
        """Copy the job to the dead-letter queue with its last error, then delete it here.

        The lease is renewed first, so a consumer that lost it (where SQS can tell) adds
        nothing to the dead letters.
        """
        self._check_open()
        renewed = await self._settle(job, "change_message_visibility",
                                     VisibilityTimeout=int(self.visibility_timeout))
        if not renewed:
            return
        envelope = codec.Envelope(
            id=job.id, task=job.task, payload=job.payload, headers=job.headers,
            dedup_key=job.dedup_key, enqueued_at=job.enqueued_at.timestamp(), not_before=None,
        )
        await self._dead.add(envelope, job.attempt, error)
        await self._settle(job, "delete_message")
        self._held.pop(job.id, None)
        if job.dedup_key is not None:
            self._keys.release(job.dedup_key)  # as elsewhere: a dead job frees its key

    # -- DeadLetterStore ----------------------------------------------------------------

    async def list_dead(self, limit: int = 100) -> list[DeadLetter]:
        self._check_open()
        return await self._dead.listing(limit)

    async def replay(self, dead_letter_id: str) -> bool:
        """Queue the dead job again as a fresh job (new id, attempt 1, same dedup key).

        The replay bypasses SQS's FIFO dedup window (it uses the new id), because a dead
        job no longer holds its key; a job with that key held in this instance covers it.
        """
        self._check_open()
        found = await self._dead.take(dead_letter_id)
        if not found:
            return False
        try:
            old = codec.decode(found[0]["Body"])
        except (ValueError, KeyError, TypeError):
            log.error("dead letter %s is not a job envelope; dropped", dead_letter_id)
            return True
        if old.dedup_key is not None and not self._keys.claim(
            old.dedup_key, time.monotonic() + self.dedup_retention_seconds
        ):
            return True
        fresh = codec.Envelope(
            id=new_ulid(), task=old.task, payload=old.payload, headers=old.headers,
            dedup_key=old.dedup_key, enqueued_at=time.time(), not_before=None,
        )
        await self._send(fresh, fresh.id)
        return True

    async def purge(self) -> int:
        self._check_open()
        return await self._dead.purge()

    # -- operations -------------------------------------------------------------------

    async def ping(self) -> None:
        """Both queues answer (GetQueueAttributes); raises QueueUnavailable otherwise."""
        self._check_open()
        await self._client.approximate_count(self.queue_url)
        await self._dead.count()

    async def depth(self) -> int:
        """Waiting, delayed and in-flight messages: approximate on AWS (seconds behind)."""
        self._check_open()
        return await self._client.approximate_count(self.queue_url)

    async def dead_count(self) -> int:
        self._check_open()
        return await self._dead.count()

    async def close(self) -> None:
        """Abandon pending long polls and close the client; later calls raise."""
        self._closed = True
        for request in list(self._orphans):
            request.cancel()
        await self._client.close()
