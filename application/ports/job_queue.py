"""Job queue ports: the producer side use cases see, and the consumer side workers drive."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from application.errors import PayloadTooLarge


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job. ``attempt`` is 1 on the first delivery and grows with each retry."""

    id: str
    task: str
    payload: Mapping[str, Any]
    attempt: int
    max_attempts: int
    enqueued_at: datetime
    dedup_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    task: str
    payload: Mapping[str, Any]
    attempts: int
    last_error: str
    failed_at: datetime
    dedup_key: str | None = None


def encode_payload(
    task: str, payload: Mapping[str, Any], headers: Mapping[str, str] | None, limit: int | None
) -> tuple[str, dict[str, str]]:
    """What every queue refuses before storing a job, with the same errors everywhere.

    Returns the payload as compact JSON text and the headers as a plain dict. A payload
    must be a JSON-serialisable mapping (``TypeError``/``ValueError`` otherwise) of at most
    ``limit`` UTF-8 bytes (``PayloadTooLarge``); headers must map str to str.
    """
    if not isinstance(payload, Mapping):
        raise TypeError(f"payload of task {task!r} must be a mapping, not {type(payload).__name__}")
    try:
        text = json.dumps(dict(payload), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text.encode("utf-8"))  # lone surrogates fail here, as ValueError
    except (TypeError, ValueError) as exc:
        raise ValueError(f"payload of task {task!r} is not JSON-serialisable: {exc}") from exc
    if limit is not None and size > limit:
        raise PayloadTooLarge(f"payload of task {task!r} is {size} bytes; the limit is {limit}")
    header_map = dict(headers or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in header_map.items()):
        raise TypeError(f"headers of task {task!r} must map str to str")
    return text, header_map


class JobQueue(Protocol):
    """Where use cases put work. Delivery is at least once; handlers must be idempotent."""

    async def enqueue(
        self,
        task: str,
        payload: Mapping[str, Any],
        *,
        dedup_key: str | None = None,
        delay_seconds: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> str | None:
        """Store a job durably and return its id.

        With ``dedup_key``, a second enqueue while a job with that key is waiting, running
        or recently done stores nothing and returns None. The job is not delivered before
        ``delay_seconds``. Raises ``QueueUnavailable`` when the queue cannot be reached and
        ``PayloadTooLarge`` past the backend's limit.
        """
        ...


class JobConsumer(Protocol):
    """What a worker runner drives. A received job is leased, not removed."""

    visibility_timeout: float

    async def receive(self, max_jobs: int, wait_seconds: float) -> list[Job]:
        """Claim up to ``max_jobs`` due jobs, waiting at most ``wait_seconds`` for one.

        Each is leased for ``visibility_timeout`` seconds; if it is neither acked nor
        failed by then (its worker died), it is delivered again.
        """
        ...

    async def ack(self, job: Job) -> None: ...

    async def retry(self, job: Job, error: str, delay_seconds: float) -> None:
        """Give the job back to be delivered again after ``delay_seconds``."""
        ...

    async def dead_letter(self, job: Job, error: str) -> None:
        """Move the job to the dead-letter store with its last error."""
        ...

    async def extend_lease(self, job: Job, seconds: float) -> None:
        """Keep a long-running job invisible to other workers for ``seconds`` more."""
        ...


class DeadLetterStore(Protocol):
    async def list_dead(self, limit: int = 100) -> list[DeadLetter]: ...

    async def replay(self, dead_letter_id: str) -> bool:
        """Queue the dead job again as a fresh job (attempt 1); False if no such id."""
        ...

    async def purge(self) -> int:
        """Delete every dead letter; returns how many."""
        ...
