from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.conversation import Conversation
from domain.message import Message


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply with attachments: public http(s) URLs Twilio fetches (sent with the first
    part of the text)."""

    text: str
    media_urls: tuple[str, ...] = ()


class Responder(Protocol):
    """Produces the reply text for an inbound message, given the conversation so far.

    ``history`` is oldest first and ends with ``message``. Answers the text, or a ``Reply``
    to attach media. Raises ``DeliveryFailed`` (retryable or not) when the model service
    fails.
    """

    async def reply(
        self, conversation: Conversation, message: Message, history: Sequence[Message]
    ) -> str | Reply: ...
