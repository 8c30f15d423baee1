"""The job queue: its backend, connection and delivery bounds."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from bootstrap.settings._common import ConcernSettings

QUEUE_ALIASES = {"bullmq": "arq", "redis": "arq"}


class QueueSettings(ConcernSettings):
    queue_backend: Literal["sqlite", "arq", "sqs", "memory"] = "sqlite"
    queue_sqlite_db_path: str = "./var/queue.db"
    queue_redis_url: str = "redis://localhost:6379"
    queue_sqs_queue_url: str | None = None
    queue_sqs_endpoint_url: str | None = None
    queue_sqs_dlq_url: str | None = None  # unset: the queue's name + "-dlq"
    queue_aws_region: str = "us-east-1"
    queue_aws_access_key_id: str | None = None
    queue_aws_secret_access_key: SecretStr | None = None
    queue_max_attempts: int = Field(5, ge=1)
    queue_visibility_timeout_seconds: float = Field(60.0, gt=0)
    # The SQLite queue's lease, renewed by the running worker's heartbeat (every third of
    # it): kept short, so the job of a worker that died is delivered again within seconds.
    queue_sqlite_lease_seconds: float = Field(5.0, gt=0)
    # Only a fallback: enqueues wake idle workers (in process, by note, or by Redis publish).
    queue_poll_interval_seconds: float = Field(1.0, gt=0)

    # The QUEUE_BACKEND value when it was an alias (bullmq, redis), for a start-up log line.
    _queue_backend_alias: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_queue_alias(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        settings = handler(data)
        raw = data.get("queue_backend") if isinstance(data, dict) else None
        if isinstance(raw, str) and raw.strip().lower() in QUEUE_ALIASES:
            settings._queue_backend_alias = raw.strip().lower()
        return settings

    @property
    def queue_backend_alias(self) -> str | None:
        return self._queue_backend_alias

    @field_validator("queue_backend", mode="before")
    @classmethod
    def _queue_alias(cls, value: object) -> object:
        if isinstance(value, str):
            lowered = value.strip().lower()
            return QUEUE_ALIASES.get(lowered, lowered)
        return value
