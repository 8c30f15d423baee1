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
    history_limit: int = 20
