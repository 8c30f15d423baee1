"""Task names, their payloads, and the use case that runs each.

Jobs carry ids, never objects: a payload is a small JSON object that the handler turns
back into a frozen request, failing permanently when it is malformed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from application.errors import PermanentJobError

GENERATE_REPLY = "generate_reply"
SEND_MESSAGE = "send_message"
DOWNLOAD_MEDIA = "download_media"
APPLY_STATUS = "apply_status"


def _required_str(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise PermanentJobError(f"payload field {key!r} missing or not a string: {payload!r}")
    return value


@dataclass(frozen=True, slots=True)
class GenerateReplyPayload:
    message_id: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> GenerateReplyPayload:
        return cls(_required_str(payload, "message_id"))

    def to_payload(self) -> dict[str, Any]:
        return {"message_id": self.message_id}

    @property
    def dedup_key(self) -> str:
        return f"{GENERATE_REPLY}:{self.message_id}"


@dataclass(frozen=True, slots=True)
class SendMessagePayload:
    message_id: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> SendMessagePayload:
        return cls(_required_str(payload, "message_id"))

    def to_payload(self) -> dict[str, Any]:
        return {"message_id": self.message_id}

    @property
    def dedup_key(self) -> str:
        return f"{SEND_MESSAGE}:{self.message_id}"


@dataclass(frozen=True, slots=True)
class DownloadMediaPayload:
    message_id: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> DownloadMediaPayload:
        return cls(_required_str(payload, "message_id"))

    def to_payload(self) -> dict[str, Any]:
        return {"message_id": self.message_id}

    @property
    def dedup_key(self) -> str:
        return f"{DOWNLOAD_MEDIA}:{self.message_id}"


@dataclass(frozen=True, slots=True)
class ApplyStatusPayload:
    """A status callback that arrived before its MessageSid was recorded, kept to retry."""

    message_sid: str
    status: str
    error_code: str | None = None
    tries: int = 1

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ApplyStatusPayload:
        error_code = payload.get("error_code")
        tries = payload.get("tries", 1)
        if not isinstance(tries, int) or (error_code is not None
                                          and not isinstance(error_code, str)):
            raise PermanentJobError(f"malformed apply_status payload: {payload!r}")
        return cls(_required_str(payload, "message_sid"), _required_str(payload, "status"),
                   error_code, tries)

    def to_payload(self) -> dict[str, Any]:
        return {"message_sid": self.message_sid, "status": self.status,
                "error_code": self.error_code, "tries": self.tries}

    @property
    def dedup_key(self) -> str:
        return f"{APPLY_STATUS}:{self.message_sid}:{self.status}:{self.tries}"


P = TypeVar("P")
P_contra = TypeVar("P_contra", contravariant=True)


class TaskUseCase(Protocol[P_contra]):
    async def execute(self, request: P_contra) -> object: ...


@dataclass(frozen=True, slots=True)
class TaskSpec(Generic[P]):
    name: str
    payload_type: type[P]
    use_case: type[TaskUseCase[P]]


@dataclass(frozen=True, slots=True)
class PeriodicSpec:
    """A task a module runs on a schedule: ``use_case.execute()`` every ``every_seconds``.

    Runs on every queue backend (the runner's own schedule; arq's cron jobs). Several
    workers may run it at once: its use case must be safe to run concurrently.
    """

    name: str
    every_seconds: float
    use_case: type[PeriodicUseCase]


class PeriodicUseCase(Protocol):
    async def execute(self) -> object: ...


def task_registry() -> dict[str, TaskSpec[Any]]:
    """Every task the application runs, by name. Workers are generated from this."""
    # Imported here: use cases import this module for the names and payloads.
    from application.use_cases.download_media import DownloadInboundMedia
    from application.use_cases.generate_reply import GenerateReply
    from application.use_cases.record_delivery_status import ApplyEarlyStatus
    from application.use_cases.send_outbound import SendOutboundMessage

    specs: list[TaskSpec[Any]] = [
        TaskSpec(GENERATE_REPLY, GenerateReplyPayload, GenerateReply),
        TaskSpec(SEND_MESSAGE, SendMessagePayload, SendOutboundMessage),
        TaskSpec(DOWNLOAD_MEDIA, DownloadMediaPayload, DownloadInboundMedia),
        TaskSpec(APPLY_STATUS, ApplyStatusPayload, ApplyEarlyStatus),
    ]
    return {spec.name: spec for spec in specs}
