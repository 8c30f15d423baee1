"""Task declarations (name, payload type, use case) and the built-in tasks' payloads.

Modules declare their tasks with ``TaskSpec`` and ``PeriodicSpec``; the composition root
builds every worker's handlers from what the composed modules declare.

Jobs carry ids, never objects: a payload is a small JSON object that the handler turns
back into a frozen request, failing permanently when it is malformed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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
T = TypeVar("T")
P_contra = TypeVar("P_contra", contravariant=True)


class TaskUseCase(Protocol[P_contra]):
    async def execute(self, request: P_contra) -> object: ...


@dataclass(frozen=True, slots=True)
class StalledJob:
    """A job the sweep queues again: its payload, the dedup key its producer uses (so a
    job still waiting or running blocks the copy), and the correlation id for the logs."""

    payload: Mapping[str, Any]
    dedup_key: str
    correlation_id: str | None = None
    # The step the work stalled at, when it is an earlier task than the finder's own (a
    # reply whose media download or transcription was lost starts again there).
    task: str | None = None


class StalledWork(Protocol):
    """How the sweep finds a task's lost work, from the database (the source of truth)."""

    async def find(self, before: datetime, limit: int) -> Sequence[StalledJob]:
        """Jobs for work stored before ``before`` that is still not done, at most ``limit``.

        Must be idempotent and read-only; dead-lettered work is filtered out by the sweep.
        """
        ...


@dataclass(frozen=True, slots=True)
class TaskSpec(Generic[P]):
    """A queued task: its name, its payload type (``from_payload``), its use case, and
    optionally how the sweep finds its lost jobs (without it, a lost job stays lost)."""

    name: str
    payload_type: type[P]
    use_case: type[TaskUseCase[P]]
    stalled: type[StalledWork] | None = None


class Resolver(Protocol):
    """Looks a dependency up by its type (the composition root's container)."""

    def __call__(self, dependency: type[T], /) -> T: ...


# A period in seconds, or a function computing it from what the container holds (a
# module's settings), so a schedule can be configured without the module knowing how.
Every = float | Callable[[Resolver], float]


@dataclass(frozen=True, slots=True)
class PeriodicSpec:
    """A task a module runs on a schedule: ``use_case.execute()`` every ``every_seconds``.

    ``every_seconds`` is a number or a function of a ``Resolver`` (evaluated once when a
    worker starts); zero or less turns the task off. Runs on every queue backend (the
    runner's own schedule; arq's cron jobs). Several workers may run it at once, so its
    use case must be safe to run concurrently and idempotent (a failure is only logged;
    the next period tries again).
    """

    name: str
    every_seconds: Every
    use_case: type[PeriodicUseCase]

    def period(self, resolve: Resolver) -> float:
        every = self.every_seconds
        return float(every if isinstance(every, int | float) else every(resolve))


class PeriodicUseCase(Protocol):
    async def execute(self) -> object: ...


TRANSCRIBE_AUDIO = "transcribe_audio"


@dataclass(frozen=True, slots=True)
class TranscribeAudioPayload:
    message_id: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> TranscribeAudioPayload:
        return cls(_required_str(payload, "message_id"))

    def to_payload(self) -> dict[str, Any]:
        return {"message_id": self.message_id}

    @property
    def dedup_key(self) -> str:
        return f"{TRANSCRIBE_AUDIO}:{self.message_id}"
