"""Keep a keep-alive connection after an error that was already answered.

Starlette's outermost error middleware sends the 500 envelope and then re-raises, so the
server can log it; uvicorn then closes the connection, which a client on keep-alive sees
as a reset. The error was logged by our handler already, and the answer is complete: the
exception is swallowed here. One raised before any answer is left to the server.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AfterResponseGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answered = False

        async def watch(message: Message) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered = True

        try:
            await self.app(scope, receive, watch)
        except Exception:
            if not answered:
                raise
