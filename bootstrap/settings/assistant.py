"""The assistant's conduct around people: handoff, and the message that closes a chat."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from application.policy import DEFAULT_HANDOFF_KEYWORDS
from bootstrap.settings._common import ConcernSettings, split_commas


class AssistantSettings(ConcernSettings):
    # A message that is exactly one of these hands the conversation to a person.
    assistant_handoff_keywords: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: sorted(DEFAULT_HANDOFF_KEYWORDS)
    )
    # How long a hold lasts before the bot answers again; 0: until released.
    assistant_handoff_timeout_minutes: int = Field(60, ge=0)
    # Sent when the lifecycle task closes a conversation (inside the 24-hour window only).
    assistant_closing_message: str | None = None
    # How often the lifecycle task looks for idle and expired conversations; 0: off.
    assistant_lifecycle_interval_seconds: float = Field(60.0, ge=0)

    @field_validator("assistant_handoff_keywords", mode="before")
    @classmethod
    def _split_handoff_keywords(cls, value: object) -> object:
        return split_commas(value)
