"""When a conversation closes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from bootstrap.settings._common import ConcernSettings, split_commas


class ConversationSettings(ConcernSettings):
    conversation_idle_timeout_minutes: int = Field(15, ge=1)
    conversation_expiration_minutes: int = Field(1440, ge=1)
    conversation_closure_keywords: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["bye", "goodbye", "exit", "quit", "stop", "end",
                                 "tchau", "sair", "encerrar", "adios"]
    )

    @field_validator("conversation_closure_keywords", mode="before")
    @classmethod
    def _split_keywords(cls, value: object) -> object:
        return split_commas(value)
