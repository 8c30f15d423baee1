"""The SQS message format: a JSON envelope in the body, trace headers mirrored as attributes.

The body is the source of truth (id, task, payload, headers, dedup key, enqueue time, due
time), so a job round-trips exactly whatever SQS allows in attributes. Headers are also
copied to message attributes when SQS accepts them as such, so tools reading the queue see
the trace context. Dead letters carry the attempt count and last error as attributes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from application.errors import PayloadTooLarge
from application.ports.job_queue import DeadLetter, encode_payload

# SQS counts the body plus every attribute's name, type and value against this.
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
MAX_ATTRIBUTES = 10
ATTEMPTS_ATTRIBUTE = "wta-attempts"
ERROR_ATTRIBUTE = "wta-last-error"
# Room left for ATTEMPTS_ATTRIBUTE and ERROR_ATTRIBUTE when a job is dead-lettered.
_MAX_HEADER_ATTRIBUTES = MAX_ATTRIBUTES - 2
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_-](?:[A-Za-z0-9_.-]{0,254}[A-Za-z0-9_-])?$")
# Characters SQS refuses in a body although JSON allows them raw inside strings.
_SQS_FORBIDDEN = {0xFFFE: "\\ufffe", 0xFFFF: "\\uffff"}
REDRIVEN_ERROR = "moved to the dead-letter queue by its redrive policy (no error recorded)"


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    task: str
    payload: Mapping[str, Any]
    headers: Mapping[str, str]
    dedup_key: str | None
    enqueued_at: float  # epoch seconds, the producer's clock
    not_before: float | None  # epoch seconds; None when the job was not delayed

    def body(self) -> str:
        data = {
            "v": 1, "id": self.id, "task": self.task, "payload": self.payload,
            "headers": self.headers, "dedup_key": self.dedup_key,
            "enqueued_at": self.enqueued_at, "not_before": self.not_before,
        }
        text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.translate(_SQS_FORBIDDEN)  # only ever inside JSON strings: stays valid


def check_job(task: str, payload: Mapping[str, Any], headers: Mapping[str, str] | None) -> None:
    """Reject what cannot be stored, with the same errors as the other queues."""
    encode_payload(task, payload, headers, None)  # the size check covers the whole message


def header_attributes(headers: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Headers SQS accepts as String attributes (valid name, non-empty value), up to 8."""
    attributes: dict[str, dict[str, str]] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if (
            len(attributes) < _MAX_HEADER_ATTRIBUTES
            and value
            and _ATTRIBUTE_NAME.match(name)
            and ".." not in name
            and not lowered.startswith(("aws.", "amazon."))
            and lowered not in (ATTEMPTS_ATTRIBUTE, ERROR_ATTRIBUTE)
        ):
            attributes[name] = {"DataType": "String", "StringValue": value}
    return attributes


def message_size(body: str, attributes: Mapping[str, Mapping[str, str]]) -> int:
    size = len(body.encode("utf-8"))
    for name, attribute in attributes.items():
        size += len(name.encode()) + len(attribute["DataType"].encode())
        size += len(attribute.get("StringValue", "").encode("utf-8"))
    return size


def check_size(task: str, body: str, attributes: Mapping[str, Mapping[str, str]],
               limit: int) -> None:
    size = message_size(body, attributes)
    if size > limit:
        raise PayloadTooLarge(
            f"task {task!r} makes a {size}-byte SQS message (body and attributes); "
            f"the limit is {limit} bytes"
        )


def dedup_id(key: str) -> str:
    """A MessageDeduplicationId for any key: SQS allows 128 characters of a narrow set."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def decode(body: str) -> Envelope:
    """Raises ValueError (or a subclass) when the body is not one of our envelopes."""
    data = json.loads(body)
    if not isinstance(data, dict) or data.get("v") != 1:
        raise ValueError("not a job envelope")
    payload, headers = data["payload"], data.get("headers") or {}
    if not isinstance(payload, dict) or not isinstance(headers, dict):
        raise ValueError("malformed job envelope")
    not_before = data.get("not_before")
    return Envelope(
        id=str(data["id"]), task=str(data["task"]), payload=payload,
        headers={str(k): str(v) for k, v in headers.items()},
        dedup_key=data.get("dedup_key"), enqueued_at=float(data["enqueued_at"]),
        not_before=None if not_before is None else float(not_before),
    )


def dead_attributes(
    envelope: Envelope, attempts: int, error: str, limit: int
) -> dict[str, dict[str, str]]:
    """Attributes of a dead letter; the error is cut short if the message would not fit."""
    attributes = header_attributes(envelope.headers)
    attributes[ATTEMPTS_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(attempts)}
    room = limit - message_size(envelope.body(), attributes)
    room -= len(ERROR_ATTRIBUTE) + len("String")
    text = error or "(no error message)"
    if len(text.encode("utf-8")) > room:
        text = text.encode("utf-8")[: max(room - 3, 1)].decode("utf-8", "ignore") + "..."
    attributes[ERROR_ATTRIBUTE] = {"DataType": "String", "StringValue": text}
    return attributes


def dead_letter(message: Mapping[str, Any]) -> DeadLetter:
    """A DLQ message as a DeadLetter; tolerates messages a redrive policy moved there."""
    attributes = message.get("MessageAttributes") or {}
    system = message.get("Attributes") or {}
    failed_at = datetime.fromtimestamp(int(system.get("SentTimestamp", "0")) / 1000, UTC)
    error = attributes.get(ERROR_ATTRIBUTE, {}).get("StringValue", REDRIVEN_ERROR)
    attempts = int(attributes.get(ATTEMPTS_ATTRIBUTE, {}).get("StringValue", "0"))
    try:
        envelope = decode(message["Body"])
    except (ValueError, KeyError, TypeError):
        return DeadLetter(id=message["MessageId"], task="<undecodable>",
                          payload={"body": message["Body"]}, attempts=attempts,
                          last_error=error, failed_at=failed_at)
    return DeadLetter(id=envelope.id, task=envelope.task, payload=envelope.payload,
                      attempts=attempts, last_error=error, failed_at=failed_at,
                      dedup_key=envelope.dedup_key)
