from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from application.errors import ApplicationError
from application.ports.assistant_profiles import AssistantProfile
from domain.conversation import Conversation
from domain.message import Message


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply with attachments: public http(s) URLs Twilio fetches (sent with the first
    part of the text)."""

    text: str
    media_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Image:
    """An image the contact sent, downloaded: for a vision-capable model."""

    content_type: str
    data: bytes


class ResponderFailed(ApplicationError):
    """The model service gave no reply.

    ``retryable`` says whether asking again may succeed (a timeout, a refused connection,
    408/409/429/5xx) or never will (400/401/403/404/422: a bad request, key or model).
    ``retry_after`` is the service's own hint, in seconds, when it gave one; the job is not
    retried sooner.
    """

    code = "RESPONDER_FAILED"

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None,
                 error_code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.error_code = error_code


class Responder(Protocol):
    """Produces the reply text for an inbound message, given the conversation so far.

    ``history`` is oldest first and ends with ``message``; the caller has already cut it to
    its budget. Answers the text, or a ``Reply`` to attach media. Raises ``ResponderFailed``
    when the model service fails. ``profile``: the owner's assistant settings; its fields
    that are set (system prompt, model, temperature, reply language) override the
    responder's own for this call. ``images``: the images ``message`` carries, given only
    when the deployment's model can see them.
    """

    async def reply(
        self, conversation: Conversation, message: Message, history: Sequence[Message],
        profile: AssistantProfile | None = None, images: Sequence[Image] = (),
    ) -> str | Reply: ...
