"""A protocol double of an OpenAI-compatible Chat Completions API, over loopback sockets.

``POST /v1/chat/completions`` with a JSON body ``{"model", "messages": [{"role", "content"}]}``
and ``Authorization: Bearer <key>``. Answers like the API: 200 with
``{"id", "object": "chat.completion", "model", "choices": [{"index": 0, "message":
{"role": "assistant", "content"}, "finish_reason": "stop"}], "usage": {...}}``, and errors
as ``{"error": {"message", "type", "code"}}`` (401 for a wrong key, 400 for a bad body).
By default the reply is ``"LLM: <last user message>"``; tests can script replies and
failures, and slow answers (``delay_seconds``, read when a request arrives). Requests are
recorded on arrival, before any delay. Scripted failures (``fail_next``, ``script``) are
answered in order, each with an optional ``Retry-After``; ``attempts`` counts every
authenticated request, failed ones included.

``POST /v1/audio/transcriptions`` takes the multipart upload (``file``, ``model``) and
answers ``{"text"}``: the next of ``transcripts``, else ``"transcript of <n> bytes"``;
each upload is kept in ``transcriptions``. A user turn sent as content parts (vision)
is answered ``"LLM: <text> [<n> image(s): <types>]"``; an image part that is not a
base64 ``data:image/...`` URL is a 400.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.threaded_server import ThreadedServer

DEFAULT_API_KEY = "sk-fake-llm-key-0123456789"  # test-only value


@dataclass(frozen=True, slots=True)
class _Failure:
    status: int
    code: str | None
    retry_after: str | None = None


def _parts(content: Any) -> tuple[str, list[str] | None]:
    """A user turn's text and its images' content types (vision requests send content
    as parts: ``text`` and ``image_url`` with a data URL); None for a malformed image."""
    if isinstance(content, str):
        return content, []
    text, images = [], []
    for part in content if isinstance(content, list) else []:
        if part.get("type") == "text":
            text.append(str(part.get("text", "")))
        elif part.get("type") == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            head, _, data = url.partition(";base64,")
            if not head.startswith("data:image/") or not data:
                return "", None
            try:
                base64.b64decode(data, validate=True)
            except ValueError:
                return "", None
            images.append(head.removeprefix("data:"))
    return " ".join(text), images


@dataclass(frozen=True, slots=True)
class Transcription:
    model: str
    filename: str
    content_type: str
    data: bytes


def _error(status: int, message: str, kind: str, code: str | None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}},
                        status_code=status)


class FakeLLMServer:
    def __init__(self, *, api_key: str = DEFAULT_API_KEY) -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.replies: deque[str] = deque()
        self._failures: deque[_Failure] = deque()
        self.attempts = 0
        self.attempt_times: list[float] = []  # time.monotonic() of each, for spacing checks
        self._lock = threading.Lock()
        self.delay_seconds = 0.0
        self._stopping = threading.Event()
        # Voice notes: what each transcription request uploaded, and scripted transcripts.
        self.transcriptions: list[Transcription] = []
        self.transcripts: deque[str] = deque()
        app = Starlette(routes=[
            Route("/v1/chat/completions", self._complete, methods=["POST"]),
            Route("/v1/audio/transcriptions", self._transcribe, methods=["POST"]),
        ])
        self._http = ThreadedServer(app, "fake-llm")

    @property
    def base_url(self) -> str:
        """What LLM_BASE_URL should be: the API root, ``/v1`` included."""
        return f"{self._http.base_url}/v1"

    def fail_next(self, *, status: int, code: str | None = None, times: int = 1,
                  retry_after: str | None = None) -> None:
        """With ``code=None`` the body is plain text, as from a proxy in front of the API.
        ``retry_after`` is sent verbatim as the ``Retry-After`` header."""
        with self._lock:
            self._failures.extend([_Failure(status, code, retry_after)] * times)

    def script(self, *statuses: int) -> None:
        """Answer the next requests with these statuses in order (200 lets one through)."""
        with self._lock:
            for status in statuses:
                if status == 200:
                    self._failures.append(_Failure(200, None))
                else:
                    self._failures.append(_Failure(status, f"scripted_{status}"))

    async def _complete(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error",
                          "invalid_api_key")
        with self._lock:
            self.attempts += 1
            self.attempt_times.append(time.monotonic())
            failure = self._failures.popleft() if self._failures else None
        if failure is not None and failure.status != 200:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
            if failure.code is None:
                return PlainTextResponse("upstream error", status_code=failure.status,
                                         headers=headers)
            response = _error(failure.status, "scripted failure", "server_error", failure.code)
            response.headers.update(headers or {})
            return response
        try:
            body = await request.json()
            messages = body["messages"]
            model = body["model"]
            assert isinstance(messages, list) and messages and isinstance(model, str)
        except (ValueError, KeyError, TypeError, AssertionError):
            return _error(400, "model and a non-empty messages list are required",
                          "invalid_request_error", None)
        with self._lock:
            self.requests.append(body)
            scripted = self.replies.popleft() if self.replies else None
        last_user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"),
                         "")
        text, images = _parts(last_user)
        if images is None:
            return _error(400, "image_url must be an http(s) or base64 data URL",
                          "invalid_request_error", "invalid_image_url")
        seen = f" [{len(images)} image(s): {', '.join(images)}]" if images else ""
        content = scripted if scripted is not None else f"LLM: {text}{seen}"
        await self._delay(self.delay_seconds)
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })

    async def _transcribe(self, request: Request) -> Response:
        """Like the API: a multipart form with ``file`` and ``model``; ``{"text"}`` back."""
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error",
                          "invalid_api_key")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return _error(400, "multipart/form-data is required", "invalid_request_error", None)
        form = await request.form()
        upload, model = form.get("file"), form.get("model")
        if isinstance(upload, str) or upload is None or not isinstance(model, str) or not model:
            return _error(400, "file and model are required", "invalid_request_error", None)
        data = await upload.read()
        with self._lock:
            self.transcriptions.append(Transcription(
                model, upload.filename or "", upload.content_type or "", data))
            scripted = self.transcripts.popleft() if self.transcripts else None
        return JSONResponse({"text": scripted if scripted is not None
                             else f"transcript of {len(data)} bytes"})

    async def _delay(self, seconds: float) -> None:
        # In slices, so stopping the server never waits out a long delay.
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def start(self) -> FakeLLMServer:
        self._stopping.clear()
        self._http.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._http.stop()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
