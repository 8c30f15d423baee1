"""The assistant benchmark's own servers, each run as its own process.

- ``model``: an OpenAI-compatible ``POST /v1/chat/completions`` that answers after a fixed
  delay (the model's time), with ``"Echo: <last user message>"`` so the open-loop client
  matches each send to its webhook as in the delivery benchmark.
- ``bare``: the baseline. Checks the Twilio signature, asks the model, posts its answer
  straight to the recorder, then answers the webhook: no storage, no queue, no worker.

Usage: ``python -m bench.assistant_servers model PORT DELAY_SECONDS`` or
``python -m bench.assistant_servers bare PORT RECORDER_URL MODEL_URL``.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench import delivery_servers
from bench.delivery_servers import INBOUND_PATH

API_KEY = "bench-model-key"  # loopback-only benchmark value
MODEL = "bench-model"


def model_app(delay: float) -> Starlette:
    async def complete(request: Request) -> Response:
        body = await request.json()
        last = next((m["content"] for m in reversed(body["messages"])
                     if m.get("role") == "user"), "")
        await asyncio.sleep(delay)
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"Echo: {last}"},
                         "finish_reason": "stop"}],
        })

    return Starlette(routes=[
        Route("/v1/chat/completions", complete, methods=["POST"]),
        Route("/health/live", lambda r: Response("ok"), methods=["GET"]),
    ])


def bare_app(recorder_url: str, model_url: str, public_url: str) -> Starlette:
    async def ask_model(session: aiohttp.ClientSession, body: str) -> str:
        ask: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": body}]}
        async with session.post(model_url + "/chat/completions", json=ask,
                                headers={"Authorization": f"Bearer {API_KEY}"}) as answer:
            return str((await answer.json())["choices"][0]["message"]["content"])

    # No connection limit: every conversation waits on the model at once.
    return delivery_servers.bare_app(recorder_url, public_url, ask_model, connections=0)


def main(argv: list[str]) -> None:
    kind, port = argv[0], int(argv[1])
    if kind == "model":
        app = model_app(float(argv[2]))
    else:
        app = bare_app(argv[2], argv[3], f"http://127.0.0.1:{port}{INBOUND_PATH}")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
