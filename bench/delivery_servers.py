"""The two small servers of the delivery benchmark, each run as its own process.

- ``recorder``: stands in for Twilio's Messages REST API. It timestamps every accepted
  send (``time.monotonic()``, which is one clock for every process on the machine), answers
  201 with a message sid, and hands its records over on ``GET /records``.
- ``bare``: the baseline. A form endpoint that checks the Twilio signature and posts the
  echo reply straight to the recorder before answering: no storage, no queue, no worker.
  Its client is aiohttp with at most 20 connections (the project's sender allows 20 too).

Usage: ``python -m bench.delivery_servers recorder|bare PORT [RECORDER_URL AUTH_TOKEN]``.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"  # loopback-only benchmark value
INBOUND_PATH = "/channels/twilio/v1/webhooks/inbound"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def recorder_app() -> Starlette:
    records: list[tuple[str, float]] = []

    async def create(request: Request) -> Response:
        form = await request.form()
        records.append((str(form.get("Body") or ""), time.monotonic()))
        sid = "SM" + uuid.uuid4().hex
        return JSONResponse({"sid": sid, "status": "queued", "to": form.get("To")}, 201)

    async def dump(request: Request) -> Response:
        return JSONResponse(records)

    async def reset(request: Request) -> Response:
        records.clear()
        return Response(status_code=204)

    return Starlette(routes=[
        Route(MESSAGES_PATH, create, methods=["POST"]),
        Route("/records", dump, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/health/live", lambda r: Response("ok"), methods=["GET"]),
    ])


async def echo(session: aiohttp.ClientSession, body: str) -> str:
    return f"Echo: {body}"


def bare_app(recorder_url: str, public_url: str,
             reply_text: Callable[[aiohttp.ClientSession, str], Awaitable[str]] = echo,
             connections: int = 20) -> Starlette:
    """``reply_text``: the reply text to a body (the assistant benchmark asks its model);
    ``connections``: the client's limit (0: none)."""
    validator = RequestValidator(AUTH_TOKEN)
    client: dict[str, aiohttp.ClientSession] = {}

    async def inbound(request: Request) -> Response:
        form = await request.form()
        params = {k: str(v) for k, v in form.items()}
        if not validator.validate(public_url, params, request.headers.get("x-twilio-signature")):
            return Response(status_code=403)
        if "c" not in client:  # made on the server's loop, at the first request
            client["c"] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=connections))
        text = await reply_text(client["c"], params["Body"])
        reply = {"To": params["From"], "From": params["To"], "Body": text}
        async with client["c"].post(recorder_url + MESSAGES_PATH, data=reply,
                                    auth=aiohttp.BasicAuth(ACCOUNT_SID, AUTH_TOKEN)) as answer:
            await answer.read()
            if answer.status != 201:
                return Response(status_code=502)
        return Response('<?xml version="1.0" encoding="UTF-8"?><Response/>',
                        media_type="text/xml")

    return Starlette(routes=[
        Route(INBOUND_PATH, inbound, methods=["POST"]),
        Route("/health/live", lambda r: Response("ok"), methods=["GET"]),
    ])


def main(argv: list[str]) -> None:
    kind, port = argv[0], int(argv[1])
    if kind == "recorder":
        app = recorder_app()
    else:
        app = bare_app(argv[2], f"http://127.0.0.1:{port}{INBOUND_PATH}")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
