"""Every setting in one validated object. Names follow ARCHITECTURE.md.

Settings are read when ``load_settings()`` is called, never at import time. An invalid
value or an unknown variable with one of the project's prefixes fails fast, naming it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from application.policy import DEFAULT_FALLBACK_MESSAGE

DEFAULT_SECRET_KEY = "change-me-in-production"  # noqa: S105 - refused in production
# HS256 wants a key at least as long as its hash (RFC 7518 3.2).
MIN_SECRET_KEY_BYTES = 32
DEV_ACCOUNT_SID = "AC" + "0" * 32
DEV_AUTH_TOKEN = "development-auth-token"  # noqa: S105 - refused in production
DEV_PHONE_NUMBER = "whatsapp:+14155238886"

# Unknown variables with these prefixes are typos of real settings, not someone else's.
_OWN_PREFIXES = ("API_", "DATABASE_", "QUEUE_", "TWILIO_", "SUPABASE_", "LLM_", "CONVERSATION_",
                 "LOG_", "WORKER_", "ASSISTANT_")

QUEUE_ALIASES = {"bullmq": "arq", "redis": "arq"}


class SettingsError(Exception):
    """Settings could not be loaded; the message names each offending variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    api_environment: Literal["development", "test", "staging", "production"] = "development"
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_public_base_url: str | None = None
    api_docs_enabled: bool | None = None
    api_embedded_worker: bool = False
    # Migrate at API start-up (single-node deployments). Unset: on in development only.
    api_auto_migrate: bool | None = None
    # Peers (IPs or CIDR networks) whose X-Forwarded-Proto/X-Forwarded-Host/Host may shape
    # the URL a Twilio signature is checked against. Empty: no one's.
    api_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The edge's bounds, enforced while reading, before anything is parsed or checked.
    api_max_body_bytes: int = Field(65536, ge=1024, le=16 * 1024 * 1024)
    api_max_form_fields: int = Field(100, ge=10, le=1000)
    api_max_header_bytes: int = Field(16384, ge=1024, le=1024 * 1024)
    api_header_timeout_seconds: float = Field(10.0, gt=0)
    api_body_timeout_seconds: float = Field(10.0, gt=0)
    api_keepalive_timeout_seconds: float = Field(5.0, gt=0)
    api_max_connections: int = Field(1000, ge=1)
    api_backlog: int = Field(2048, ge=1)
    # accept() failures (out of file descriptors) are logged at most once per interval.
    api_accept_error_log_interval_seconds: float = Field(10.0, gt=0)

    database_backend: Literal["sqlalchemy", "postgres", "supabase", "memory"] = "sqlalchemy"
    database_url: str = "sqlite:///./var/app.db"
    database_pool_min_conn: int = Field(1, ge=0)
    database_pool_max_conn: int = Field(10, ge=1)
    database_pool_timeout_seconds: float = Field(10.0, gt=0)

    supabase_url: str | None = None
    supabase_key: SecretStr | None = None
    supabase_service_key: SecretStr | None = None
    supabase_db_schema: str = "public"
    supabase_timeout_seconds: float = Field(10.0, gt=0)

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

    # Jobs mostly wait (database, Twilio, the model): more slots than cores is the point.
    worker_concurrency: int = Field(16, ge=1)
    worker_job_timeout_seconds: float = Field(120.0, gt=0)
    worker_shutdown_grace_seconds: float = Field(20.0, ge=0)
    worker_backoff_base_seconds: float = Field(1.0, ge=0)
    worker_backoff_max_seconds: float = Field(300.0, ge=0)
    # The sweep re-queues replies of messages stored this long ago with none yet (0: off).
    worker_sweep_interval_seconds: float = Field(60.0, ge=0)
    worker_sweep_after_seconds: float = Field(300.0, ge=0)

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_phone_number: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_internal_api_key: SecretStr | None = None
    twilio_validate_signature: bool = True
    twilio_status_callback_url: str | None = None
    twilio_timeout_seconds: float = Field(10.0, gt=0)

    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    # HMAC only: tokens are signed with SECRET_KEY (and "none" must never be accepted).
    algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_expire_minutes: int = Field(30, ge=1)

    llm_provider: Literal["echo", "openai"] = "echo"
    llm_model_name: str | None = None
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(30.0, gt=0)
    # The assistant's replies (issue 12): prompt, history budget, what a failure sends.
    llm_system_prompt: str | None = None
    llm_history_budget_chars: int = Field(6000, ge=1)
    assistant_fallback_message: str = Field(DEFAULT_FALLBACK_MESSAGE, pattern=r"\S")

    conversation_idle_timeout_minutes: int = Field(15, ge=1)
    conversation_expiration_minutes: int = Field(1440, ge=1)
    conversation_closure_keywords: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["bye", "goodbye", "exit", "quit", "stop", "end",
                                 "tchau", "sair", "encerrar", "adios"]
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["console", "json"] | None = None

    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = "whatsapp-core"

    # The QUEUE_BACKEND value when it was an alias (bullmq, redis), for a start-up log line.
    _queue_backend_alias: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_queue_alias(
        cls, data: Any, handler: ModelWrapValidatorHandler[Settings]
    ) -> Settings:
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

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("conversation_closure_keywords", mode="before")
    @classmethod
    def _split_keywords(cls, value: object) -> object:
        if isinstance(value, str):
            return [word.strip() for word in value.split(",") if word.strip()]
        return value

    @field_validator("api_trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, list):
            for item in value:
                ipaddress.ip_network(str(item), strict=False)  # ValueError names nothing secret
        return value

    @field_validator("twilio_phone_number")
    @classmethod
    def _whatsapp_number(cls, value: str | None) -> str | None:
        if value and not value.startswith("whatsapp:"):
            return f"whatsapp:{value}"
        return value

    @field_validator("api_public_base_url", "twilio_api_base_url", "llm_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _llm_is_configured(self) -> Settings:
        if self.llm_provider == "openai" and not self.llm_model_name:
            raise ValueError("LLM_PROVIDER=openai needs LLM_MODEL_NAME")
        if self.llm_provider == "openai" and (
            self.llm_timeout_seconds >= self.worker_job_timeout_seconds
        ):
            # A model call cut off by the job's timeout would leave the last attempt no time
            # to send the fallback message.
            raise ValueError("LLM_TIMEOUT_SECONDS must be below WORKER_JOB_TIMEOUT_SECONDS")
        return self

    @property
    def effective_llm_base_url(self) -> str:
        return self.llm_base_url or "https://api.openai.com/v1"

    @model_validator(mode="after")
    def _supabase_is_configured(self) -> Settings:
        if self.database_backend == "supabase" and not (
            self.supabase_url and (self.supabase_service_key or self.supabase_key)
        ):
            raise ValueError(
                "DATABASE_BACKEND=supabase needs SUPABASE_URL and SUPABASE_SERVICE_KEY "
                "(or SUPABASE_KEY)"
            )
        return self

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.api_environment != "production":
            return self
        problems = []
        secret = self.secret_key.get_secret_value()
        if secret == DEFAULT_SECRET_KEY:
            problems.append("SECRET_KEY must be set to a non-default value in production")
        elif len(secret.encode()) < MIN_SECRET_KEY_BYTES:
            problems.append(
                f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes in production")
        if not self.api_public_base_url:
            problems.append("API_PUBLIC_BASE_URL is required in production (the URL Twilio signs)")
        if not self.twilio_validate_signature:
            problems.append("TWILIO_VALIDATE_SIGNATURE must stay on in production")
        if not self.twilio_auth_token:
            problems.append("TWILIO_AUTH_TOKEN is required in production")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # Derived values, so callers never re-implement the defaults.

    @property
    def is_development(self) -> bool:
        return self.api_environment in ("development", "test")

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("console" if self.is_development else "json")

    @property
    def auto_migrate(self) -> bool:
        if self.api_auto_migrate is None:
            return self.api_environment == "development"
        return self.api_auto_migrate

    @property
    def docs_enabled(self) -> bool:
        return self.is_development if self.api_docs_enabled is None else self.api_docs_enabled

    @property
    def owner_account_sid(self) -> str:
        return self.twilio_account_sid or DEV_ACCOUNT_SID

    @property
    def owner_auth_token(self) -> str:
        token = self.twilio_auth_token
        return token.get_secret_value() if token else DEV_AUTH_TOKEN

    @property
    def owner_phone_number(self) -> str:
        return self.twilio_phone_number or DEV_PHONE_NUMBER

    @property
    def uses_twilio_sender(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)


def _unknown_own_variables(names: Iterable[str]) -> list[str]:
    known = {name.upper() for name in Settings.model_fields}
    return sorted(
        {key for key in names if key.upper().startswith(_OWN_PREFIXES) and key.upper() not in known}
    )


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Read settings from the environment (and ``.env``), failing with a readable message."""
    names = list(os.environ)
    if env_file is not None and Path(env_file).is_file():
        names += [key for key in dotenv_values(env_file) if key]
    unknown = _unknown_own_variables(names)
    if unknown:
        raise SettingsError("unknown setting(s): " + ", ".join(unknown) + " (see .env.example)")
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
        # Never echo the rejected value: it may be a secret.
        lines.append(f"{name}: {error['msg']}")
    return "invalid settings:\n  " + "\n  ".join(lines)
