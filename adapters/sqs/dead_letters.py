"""The dead-letter store of the SQS backend: a second SQS queue of the same type.

A dead letter is the job's envelope with the attempt count and last error as message
attributes; its failure time is the message's SentTimestamp. SQS cannot be read without
receiving, so listing and replay *scan*: they receive with a short visibility timeout
(hiding each message from other scans for ``SCAN_HIDE_SECONDS``) and then make every
message they did not delete visible again at once. Operator tools, not hot paths: a scan
reads at most ``SCAN_LIMIT`` messages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from adapters.sqs import codec
from adapters.sqs.client import SqsClient
from application.ports.job_queue import DeadLetter

log = logging.getLogger(__name__)

SCAN_HIDE_SECONDS = 30
SCAN_LIMIT = 10_000
Message = dict[str, Any]


def dead_letter_queue_url(queue_url: str) -> str:
    """The default DLQ: the main queue's name + "-dlq" (keeping a FIFO queue's suffix)."""
    if queue_url.endswith(".fifo"):
        return queue_url[: -len(".fifo")] + "-dlq.fifo"
    return queue_url + "-dlq"


class SqsDeadLetters:
    def __init__(self, client: SqsClient, url: str, *, max_payload_bytes: int,
                 confirm_empty_seconds: int) -> None:
        self.url = url
        self.fifo = url.endswith(".fifo")
        self._client = client
        self._max_payload_bytes = max_payload_bytes
        # Short polls of a standard queue sample some servers only: confirm "empty" with a
        # brief long poll (0 in tests against moto, which always answers from everything).
        self._confirm_empty_seconds = confirm_empty_seconds

    async def add(self, envelope: codec.Envelope, attempts: int, error: str) -> None:
        attributes = codec.dead_attributes(envelope, attempts, error, self._max_payload_bytes)
        await self._send(envelope.body(), attributes, f"{envelope.id}-{attempts}")

    async def add_raw(self, message: Mapping[str, Any], error: str) -> None:
        """A main-queue message we cannot decode: kept as is, with the reason."""
        attributes = {codec.ERROR_ATTRIBUTE: {"DataType": "String", "StringValue": error}}
        await self._send(message["Body"], attributes, str(message["MessageId"]))

    async def _send(self, body: str, attributes: Mapping[str, Any], unique: str) -> None:
        params: dict[str, Any] = {"QueueUrl": self.url, "MessageBody": body,
                                  "MessageAttributes": dict(attributes)}
        if self.fifo:  # one group per message: no ordering, no head-of-line blocking
            params.update(MessageGroupId=unique, MessageDeduplicationId=unique)
        await self._client.call("send_message", **params)

    async def _receive(self, count: int, wait: int) -> list[Message]:
        response = await self._client.call(
            "receive_message", QueueUrl=self.url, MaxNumberOfMessages=count,
            VisibilityTimeout=SCAN_HIDE_SECONDS, WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["SentTimestamp"], MessageAttributeNames=["All"],
        )
        messages: list[Message] = response.get("Messages", [])
        return messages

    async def _next(self, count: int) -> list[Message]:
        messages = await self._receive(count, 0)
        if not messages and self._confirm_empty_seconds:
            messages = await self._receive(count, self._confirm_empty_seconds)
        return messages

    async def _reveal(self, messages: list[Message]) -> None:
        entries = [{"ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                   for m in messages]
        rejected = await self._client.batch("change_message_visibility_batch", self.url, entries)
        if rejected:  # hidden for SCAN_HIDE_SECONDS more at worst: nothing is lost
            log.warning("%d dead letter(s) could not be made visible again", len(rejected))

    async def _delete(self, messages: list[Message]) -> int:
        entries = [{"ReceiptHandle": m["ReceiptHandle"]} for m in messages]
        rejected = await self._client.batch("delete_message_batch", self.url, entries)
        return len(messages) - len(rejected)

    async def listing(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters in the order SQS hands them out, sorted by failure."""
        seen: list[Message] = []
        try:
            while len(seen) < min(limit, SCAN_LIMIT):
                batch = await self._next(min(10, limit - len(seen)))
                if not batch:
                    break
                seen += batch
        finally:
            if seen:
                await self._reveal(seen)
        letters: dict[str, DeadLetter] = {}
        for message in seen:
            letter = codec.dead_letter(message)
            letters.setdefault(letter.id, letter)  # a job dead-lettered twice shows once
        return sorted(letters.values(), key=lambda d: (d.failed_at, d.id))

    async def take(self, dead_letter_id: str) -> list[Message]:
        """Remove and return the messages of one dead letter (several only after a retry)."""
        seen: list[Message] = []
        found: list[Message] = []
        try:
            while not found and len(seen) < SCAN_LIMIT:
                batch = await self._next(10)
                if not batch:
                    break
                for message in batch:
                    match = codec.dead_letter(message).id == dead_letter_id
                    (found if match else seen).append(message)
        finally:
            if seen:
                await self._reveal(seen)
        if found:
            await self._delete(found)
        return found

    async def purge(self) -> int:
        purged = 0
        while batch := await self._next(10):
            purged += await self._delete(batch)
        return purged

    async def count(self) -> int:
        return await self._client.approximate_count(self.url)
