"""The system prompt, with the contact's WhatsApp profile name filled in."""

from __future__ import annotations

from collections.abc import Sequence

from domain.message import Direction, Message

PROFILE_NAME = "{profile_name}"
UNKNOWN_NAME = "unknown"
_MAX_NAME_CHARS = 80


def profile_name(message: Message, history: Sequence[Message]) -> str | None:
    """The name the contact's WhatsApp profile showed most recently, if Twilio sent one."""
    for turn in [message, *reversed(history)]:
        if turn.direction is Direction.INBOUND:
            name = turn.metadata.get("profile_name")
            if isinstance(name, str) and name.strip():
                return name
    return None


def render_system_prompt(template: str, name: str | None) -> str:
    """Replace the one placeholder literally: braces elsewhere in the template or in the
    name are text, never format fields. The name is one short line, so a crafted profile
    name cannot add lines of instructions of its own."""
    if PROFILE_NAME not in template:
        return template
    clean = " ".join("".join(c if c.isprintable() else " " for c in name or "").split())
    return template.replace(PROFILE_NAME, clean[:_MAX_NAME_CHARS] or UNKNOWN_NAME)
