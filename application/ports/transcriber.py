"""Speech to text for voice notes."""

from __future__ import annotations

from typing import Protocol

from application.errors import ApplicationError


class TranscriptionFailed(ApplicationError):
    """No transcript. ``retryable``: asking again may succeed (timeouts, 429, 5xx)."""

    code = "TRANSCRIPTION_FAILED"

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None
                 ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Transcriber(Protocol):
    """The text spoken in ``audio`` (bytes of ``content_type``, e.g. ``audio/ogg``).

    An empty string means nothing was said. Raises ``TranscriptionFailed``.
    """

    async def transcribe(self, audio: bytes, content_type: str) -> str: ...


class NoTranscriber:
    """Transcription is off: a voice note queued before it was turned off is answered
    from whatever else the message says."""

    async def transcribe(self, audio: bytes, content_type: str) -> str:
        raise TranscriptionFailed("transcription is turned off", retryable=False)
