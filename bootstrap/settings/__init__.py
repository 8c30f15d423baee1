"""Every kernel setting in one validated object, composed from one model per concern.

Settings are read when ``load_settings()`` is called, never at import time. An invalid
value or an unknown variable with one of the kernel's prefixes fails fast, naming it.
``Settings`` keeps every field flat (``settings.database_url``); each concern's model
(``DatabaseSettings``, ``QueueSettings``...) holds its fields and validators.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

from pydantic import ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from bootstrap.settings.api import ApiSettings
from bootstrap.settings.assistant import AssistantSettings
from bootstrap.settings.auth import DEFAULT_SECRET_KEY, MIN_SECRET_KEY_BYTES, AuthSettings
from bootstrap.settings.channel import DEFAULT_MEDIA_TYPES, ChannelSettings
from bootstrap.settings.conversation import ConversationSettings
from bootstrap.settings.database import DatabaseSettings
from bootstrap.settings.errors import SettingsError, describe
from bootstrap.settings.llm import LlmSettings
from bootstrap.settings.modules import ModuleSettings, env_names, read_module_settings
from bootstrap.settings.observability import ObservabilitySettings
from bootstrap.settings.queue import QUEUE_ALIASES, QueueSettings
from bootstrap.settings.twilio import (
    DEV_ACCOUNT_SID,
    DEV_AUTH_TOKEN,
    DEV_PHONE_NUMBER,
    TwilioSettings,
)
from bootstrap.settings.worker import WorkerTuning

__all__ = [
    "DEFAULT_MEDIA_TYPES",
    "DEFAULT_SECRET_KEY",
    "DEV_ACCOUNT_SID",
    "DEV_AUTH_TOKEN",
    "DEV_PHONE_NUMBER",
    "ENV_FILE",
    "MIN_SECRET_KEY_BYTES",
    "QUEUE_ALIASES",
    "Settings",
    "SettingsError",
    "kernel_env_names",
    "load_settings",
    "read_module_settings",
]

ENV_FILE = ".env"

# Unknown variables with these prefixes are typos of real settings, not someone else's.
_OWN_PREFIXES = ("API_", "DATABASE_", "QUEUE_", "TWILIO_", "SUPABASE_", "LLM_", "CONVERSATION_",
                 "ASSISTANT_", "LOG_", "WORKER_")


class Settings(
    ApiSettings, DatabaseSettings, QueueSettings, WorkerTuning, TwilioSettings, ChannelSettings,
    AuthSettings,
    LlmSettings, AssistantSettings, ConversationSettings, ObservabilitySettings, ModuleSettings,
):
    model_config = SettingsConfigDict(
        env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    @model_validator(mode="after")
    def _model_call_fits_the_job(self) -> Self:
        if self.llm_provider == "openai" and (
            self.llm_timeout_seconds >= self.worker_job_timeout_seconds
        ):
            # A model call cut off by the job's timeout would leave the last attempt no time
            # to send the fallback message.
            raise ValueError("LLM_TIMEOUT_SECONDS must be below WORKER_JOB_TIMEOUT_SECONDS")
        return self

    @model_validator(mode="after")
    def _production_is_safe(self) -> Self:
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

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("console" if self.is_development else "json")


def kernel_env_names() -> tuple[str, ...]:
    """The kernel's prefixes and variable names: no module settings prefix may cover them."""
    return _OWN_PREFIXES + tuple(name.upper() for name in Settings.model_fields)


def _unknown_own_variables(names: Iterable[str]) -> list[str]:
    known = {name.upper() for name in Settings.model_fields}
    return sorted(
        {key for key in names if key.upper().startswith(_OWN_PREFIXES) and key.upper() not in known}
    )


def load_settings(env_file: str | Path | None = ENV_FILE, **overrides: Any) -> Settings:
    """Read settings from the environment (and ``.env``), failing with a readable message."""
    unknown = _unknown_own_variables(env_names(env_file))
    if unknown:
        raise SettingsError("unknown setting(s): " + ", ".join(unknown) + " (see .env.example)")
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None
