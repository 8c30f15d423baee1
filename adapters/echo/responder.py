"""``Responder`` that echoes the inbound text: no model, no network."""

from __future__ import annotations

from collections.abc import Sequence

from application.ports.assistant_profiles import AssistantProfile
from application.ports.responder import Image
from domain.conversation import Conversation
from domain.message import Message


class EchoResponder:
    async def reply(
        self, conversation: Conversation, message: Message, history: Sequence[Message],
        profile: AssistantProfile | None = None, images: Sequence[Image] = (),
    ) -> str:
        text = message.said.strip()
        if not text and message.metadata.get("media"):
            return "Echo: [media]"
        return f"Echo: {text}"
