from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.conversation import Conversation
from domain.message import Message


class Responder(Protocol):
    """Produces the reply text for an inbound message, given the conversation so far.

    ``history`` is oldest first and ends with ``message``. Raises ``DeliveryFailed``
    (retryable or not) when the model service fails.
    """

    async def reply(
        self, conversation: Conversation, message: Message, history: Sequence[Message]
    ) -> str: ...
