"""``Transcriber`` over an OpenAI-compatible ``POST .../audio/transcriptions``.

A multipart upload (``file`` with the audio's own content type and a matching file name,
``model``); the answer is ``{"text": ...}``. Failures map like the chat responder's:
transport errors and 408/409/429/5xx may pass, other statuses will not.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from adapters.openai.errors import is_retryable, retry_after_seconds
from application.ports.transcriber import TranscriptionFailed

log = logging.getLogger("adapters.openai")

# The API guesses the format from the file name's extension.
_EXTENSIONS = {"audio/ogg": "ogg", "audio/mpeg": "mp3", "audio/mp4": "m4a", "audio/aac": "aac",
               "audio/amr": "amr", "audio/wav": "wav", "audio/webm": "webm"}


class OpenAICompatibleTranscriber:
    def __init__(self, *, client: httpx.AsyncClient, base_url: str, model: str,
                 api_key: str | None = None) -> None:
        if not model:
            raise ValueError("a transcription model name is required")
        self._client = client
        self._url = f"{base_url.rstrip('/')}/audio/transcriptions"
        self._model = model
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"OpenAICompatibleTranscriber(url={self._url!r}, model={self._model!r})"

    async def transcribe(self, audio: bytes, content_type: str) -> str:
        kind = content_type.split(";", 1)[0].strip().lower()
        name = f"voice.{_EXTENSIONS.get(kind, 'bin')}"
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            response = await self._client.post(
                self._url, headers=headers, data={"model": self._model},
                files={"file": (name, audio, kind or "application/octet-stream")})
        except httpx.HTTPError as exc:
            raise TranscriptionFailed(f"transcription unreachable: {type(exc).__name__}",
                                      retryable=True) from exc
        payload: Any
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not response.is_success:
            retryable = is_retryable(response.status_code)
            log.warning("transcription failed", extra={"status_code": response.status_code})
            raise TranscriptionFailed(
                f"transcription answered {response.status_code}", retryable=retryable,
                retry_after=retry_after_seconds(response) if retryable else None)
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str):
            raise TranscriptionFailed("transcription answered without text", retryable=True)
        return text
