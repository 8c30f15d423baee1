from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

DEFAULT_CLOSURE_KEYWORDS = frozenset(
    {"bye", "goodbye", "exit", "quit", "stop", "end", "tchau", "sair", "encerrar", "adios"}
)


@dataclass(frozen=True, slots=True)
class ConversationPolicy:
    """When a conversation ends: idle too long, open too long, or the contact asked."""

    idle_timeout: timedelta = timedelta(minutes=15)
    expiration: timedelta = timedelta(minutes=1440)
    closure_keywords: frozenset[str] = field(default=DEFAULT_CLOSURE_KEYWORDS)


DEFAULT_FALLBACK_MESSAGE = (
    "Sorry, I can't answer right now. A person from our team will get back to you."
)


@dataclass(frozen=True, slots=True)
class AssistantPolicy:
    """How replies are produced: what the model sees, what the contact gets when it fails.

    ``history_budget_chars`` bounds the text of the turns sent (the system prompt aside);
    ``history_fetch_limit`` only bounds what is read from storage to fill that budget.
    """

    fallback_message: str = DEFAULT_FALLBACK_MESSAGE
    history_budget_chars: int = 6000
    history_fetch_limit: int = 200

    def __post_init__(self) -> None:
        if not self.fallback_message.strip():
            raise ValueError("the fallback message must not be empty")
        if self.history_budget_chars < 1 or self.history_fetch_limit < 1:
            raise ValueError("the history budget and fetch limit must be positive")


DEFAULT_HANDOFF_KEYWORDS = frozenset({"human", "agent", "person", "atendente", "humano"})


@dataclass(frozen=True, slots=True)
class HandoffPolicy:
    """When a person takes over: the contact's keywords, and how long a hold lasts.

    ``timeout`` None: a hold lasts until released.
    """

    keywords: frozenset[str] = field(default=DEFAULT_HANDOFF_KEYWORDS)
    timeout: timedelta | None = timedelta(minutes=60)


@dataclass(frozen=True, slots=True)
class MediaPolicy:
    """What the assistant does with inbound media before replying.

    ``transcribe_audio``: voice notes are transcribed (a ``transcribe_audio`` job) and the
    model answers the transcript. ``vision``: images go to the model as image parts, unless
    the owner's profile says otherwise; ``vision_possible``: the responder can take image
    parts at all (an OpenAI-compatible model), whatever an owner says.
    """

    transcribe_audio: bool = False
    vision: bool = False
    vision_possible: bool = True

    def sees_images(self, owner_choice: bool | None) -> bool:
        """Whether this reply's images go to the model, given the owner's own choice."""
        return self.vision_possible and (self.vision if owner_choice is None else owner_choice)
