"""Request bodies bounded in size and in reading time, enforced while the bytes arrive.

Pure ASGI, inside the request-id middleware: a declared ``Content-Length`` over the bound
is refused before a byte is read; otherwise bytes are counted as the app receives them,
and the first one over the bound ends the request with a 413 (a slow body with a 408).
Either way the connection is closed (``Connection: close``): the rest of the body is
never read, so an unsigned 1 GB upload costs one buffer, not a gigabyte.
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

_DISCONNECT: Message = {"type": "http.disconnect"}


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, body_timeout: float,
                 max_header_bytes: int = 16384) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # h11 bounds a header block only while it is incomplete; one that arrived in a
        # single read is measured here.
        headers = scope.get("headers", [])
        if sum(len(k) + len(v) + 4 for k, v in headers) > self.max_header_bytes:
            await _refuse(send, 431, "HEADERS_TOO_LARGE",
                          f"the request headers exceed {self.max_header_bytes} bytes")
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _refuse(send, 413, "PAYLOAD_TOO_LARGE",
                          f"the request body exceeds {self.max_body_bytes} bytes")
            return
        if declared == -1:
            await _refuse(send, 400, "INVALID_CONTENT_LENGTH", "invalid Content-Length header")
            return
        state = {"received": 0, "done": False, "refused": False, "started": False}
        deadline = asyncio.get_running_loop().time() + self.body_timeout

        async def guarded_receive() -> Message:
            if state["refused"]:
                return _DISCONNECT
            if state["done"]:
                return await receive()  # after the body: only a disconnect can come
            try:
                # asyncio.timeout, not wait_for: no extra task per chunk on the hot path.
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                return await refuse_now(408, "REQUEST_TIMEOUT", "the request body was too slow")
            if message["type"] != "http.request":
                return message
            state["received"] += len(message.get("body", b""))
            if state["received"] > self.max_body_bytes:
                return await refuse_now(413, "PAYLOAD_TOO_LARGE",
                                        f"the request body exceeds {self.max_body_bytes} bytes")
            if not message.get("more_body", False):
                state["done"] = True
            return message

        async def refuse_now(status: int, code: str, detail: str) -> Message:
            state["refused"] = True
            if not state["started"]:
                log.warning("request body refused: %s", code)
                await _refuse(send, status, code, detail)
            # The app sees its client gone and stops; whatever it answers is dropped.
            return _DISCONNECT

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, guarded_receive, guarded_send)


def _content_length(scope: Scope) -> int | None:
    """The declared length; None if absent, -1 if unparsable."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) <= 18 else -1
    return None


async def _refuse(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"code": code, "detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body, "more_body": False})
