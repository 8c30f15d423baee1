"""The access line: one per request, written by the app once it answered, with the
request's log context; ``wta serve`` turns uvicorn's own line off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from bootstrap.app import create_app
from bootstrap.cli import migrate
from bootstrap.container import build_container
from bootstrap.serve import server_config
from bootstrap.simulate import inbound_params, sign
from tests.conftest import MakeSettings
from tests.observability.conftest import LogCapture, Recorded

INBOUND = "/channels/twilio/v1/webhooks/inbound"
BASE = "http://testserver"
CONTACT = "whatsapp:+5511988887777"
SID = "SM" + "5" * 32


@pytest.fixture
async def client(
    make_settings: MakeSettings, logs: LogCapture, recorded: Recorded
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    settings = make_settings(log_format="json", worker_sweep_interval_seconds=0)
    migrate(settings)  # first: Alembic's env.py re-configures logging from alembic.ini
    logs.configure(settings)
    app = create_app(settings, build_container(settings, recorded.telemetry),
                     embedded_worker=False)
    failing = APIRouter()

    @failing.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    app.include_router(failing)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            yield http, settings


def access_lines(logs: LogCapture) -> list[dict[str, Any]]:
    return [line for line in logs.lines() if line["logger"] == "wta.access"]


async def test_a_webhook_is_one_line_saying_what_became_of_the_message(
    client: tuple[httpx.AsyncClient, Any], logs: LogCapture
) -> None:
    http, settings = client
    params = inbound_params(settings, "hello", CONTACT, SID)
    headers = {"X-Twilio-Signature": sign(settings, f"{BASE}{INBOUND}", params)}
    for _ in range(2):  # Twilio's retry of the same message
        assert (await http.post(INBOUND, data=params, headers=headers)).status_code == 200
    first, second = access_lines(logs)
    assert first["event"] == f'127.0.0.1:123 - "POST {INBOUND} HTTP/1.1" 200'
    assert (first["inbound"], second["inbound"]) == ("stored", "duplicate")
    assert first["reply_queued"] is True
    assert first["correlation_id"] == SID and first["conversation_id"]
    assert first["request_id"] != second["request_id"] and first["trace_id"]
    assert first["status_code"] == 200 and first["duration_ms"] >= 0
    # A stored message is one line; the duplicate says so once more, from the use case.
    assert [line["logger"] for line in logs.lines() if line.get("correlation_id") == SID] \
        == ["wta.access", "application.use_cases.receive_inbound", "wta.access"]


async def test_refused_and_failed_requests_have_their_line_too(
    client: tuple[httpx.AsyncClient, Any], logs: LogCapture
) -> None:
    http, settings = client
    params = inbound_params(settings, "hello", CONTACT, SID)
    forged = await http.post(INBOUND, data=params, headers={"X-Twilio-Signature": "forged"})
    assert forged.status_code == 403
    failed = await http.get("/boom?limit=5")
    assert failed.status_code == 500
    refused, crashed = access_lines(logs)
    assert refused["status_code"] == 403 and "inbound" not in refused
    assert crashed["event"].endswith('"GET /boom?limit=5 HTTP/1.1" 500')
    assert crashed["request_id"] == failed.headers["x-request-id"]


def test_wta_serve_turns_uvicorns_access_line_off(make_settings: MakeSettings) -> None:
    app = create_app(make_settings(), embedded_worker=False)
    config = server_config(app, make_settings(), host="127.0.0.1", port=0, fd_limit=1024)
    assert config.access_log is False
