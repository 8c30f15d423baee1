"""The kernel's built-in tables (the WhatsApp flow's), built from their declarations."""

from __future__ import annotations

from adapters.sqlalchemy.schema import UtcDateTime, metadata, table_for
from application.conversation_entities import CONVERSATIONS, MESSAGES

conversations = table_for(CONVERSATIONS)
messages = table_for(MESSAGES)

__all__ = ["UtcDateTime", "conversations", "messages", "metadata"]
