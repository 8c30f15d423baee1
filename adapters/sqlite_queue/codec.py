"""JSON encoding of job payloads and headers, and rows back into port types."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from application.ports.job_queue import DeadLetter, Job, encode_payload


def encode_job(
    task: str, payload: Mapping[str, Any], headers: Mapping[str, str] | None, limit: int
) -> tuple[str, str]:
    """JSON text of payload and headers; rejects what cannot be stored or is too large."""
    text, header_map = encode_payload(task, payload, headers, limit)
    return text, json.dumps(header_map, ensure_ascii=False)


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def job_from_row(row: tuple[Any, ...], max_attempts: int) -> Job:
    """Row order: id, task, payload, headers, dedup_key, attempt, enqueued_at."""
    job_id, task, payload, headers, dedup_key, attempt, enqueued_at = row[:7]
    return Job(
        id=job_id,
        task=task,
        payload=json.loads(payload),
        attempt=attempt,
        max_attempts=max_attempts,
        enqueued_at=utc(enqueued_at),
        dedup_key=dedup_key,
        headers=json.loads(headers),
    )


def dead_letter_from_row(row: tuple[Any, ...]) -> DeadLetter:
    """Row order: id, task, payload, attempts, last_error, failed_at, dedup_key."""
    dl_id, task, payload, attempts, last_error, failed_at, dedup_key = row
    return DeadLetter(
        id=dl_id,
        task=task,
        payload=json.loads(payload),
        attempts=attempts,
        last_error=last_error,
        failed_at=utc(failed_at),
        dedup_key=dedup_key,
    )
