"""The responder: echo, or an OpenAI-compatible model."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from application.policy import DEFAULT_FALLBACK_MESSAGE
from bootstrap.settings._common import ConcernSettings, http_url


class LlmSettings(ConcernSettings):
    llm_provider: Literal["echo", "openai"] = "echo"
    llm_model_name: str | None = None
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(30.0, gt=0)
    # The assistant's replies: prompt, history budget, what a failure sends.
    llm_system_prompt: str | None = None
    llm_history_budget_chars: int = Field(6000, ge=1)
    assistant_fallback_message: str = Field(DEFAULT_FALLBACK_MESSAGE, pattern=r"\S")
    # Voice notes: transcribed at {LLM_BASE_URL}/audio/transcriptions before the reply.
    llm_transcription_enabled: bool = False
    llm_transcription_model: str = Field("whisper-1", min_length=1)
    # The model sees images (sent as image parts); otherwise an image gets a reply
    # saying it cannot be seen.
    llm_vision: bool = False

    @field_validator("llm_base_url")
    @classmethod
    def _llm_url(cls, value: str | None) -> str | None:
        return http_url(value)

    @model_validator(mode="after")
    def _llm_is_configured(self) -> Self:
        if self.llm_provider == "openai" and not self.llm_model_name:
            raise ValueError("LLM_PROVIDER=openai needs LLM_MODEL_NAME")
        if self.llm_transcription_enabled and self.llm_provider != "openai":
            # The echo responder has no model service to transcribe with.
            raise ValueError("LLM_TRANSCRIPTION_ENABLED needs LLM_PROVIDER=openai")
        return self

    @property
    def effective_llm_base_url(self) -> str:
        return self.llm_base_url or "https://api.openai.com/v1"
