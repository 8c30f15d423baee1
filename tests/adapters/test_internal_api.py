"""The internal API through the real ASGI app: auth (X-API-Key, JWT), owner scoping, cursor
pagination, and queueing an outbound message idempotently."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from lagom import Container

from adapters.fastapi.security import TokenSettings, create_access_token
from application.ports.job_queue import JobConsumer
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from bootstrap.app import create_app
from bootstrap.cli import main as wta
from bootstrap.cli import migrate
from bootstrap.container import build_container
from bootstrap.settings import DEV_ACCOUNT_SID, DEV_PHONE_NUMBER
from bootstrap.simulate import inbound_params, sign
from domain.message import DeliveryStatus
from tests.conftest import MakeSettings

BASE = "http://testserver"
KEY = "internal-key-for-tests"
SECRET = "a-jwt-secret-that-is-long-enough-for-hs256"
OWNER = DEV_ACCOUNT_SID
TOKENS = TokenSettings(secret_key=SECRET)
INBOUND = "/channels/twilio/v1/webhooks/inbound"


class Api:
    def __init__(self, client: httpx.AsyncClient, container: Container, settings: Any) -> None:
        self.client, self.container, self.settings = client, container, settings

    async def inbound(self, contact: str, sid: str, body: str = "hi") -> None:
        params = inbound_params(self.settings, body, contact, sid)
        signature = sign(self.settings, f"{BASE}{INBOUND}", params)
        response = await self.client.post(INBOUND, data=params,
                                          headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200

    async def depth(self) -> int:
        queue: Any = self.container[JobConsumer]
        return int(await queue.depth())


@pytest.fixture
async def api(make_settings: MakeSettings) -> AsyncIterator[Api]:
    settings = make_settings(twilio_internal_api_key=KEY, secret_key=SECRET)
    migrate(settings)
    container = build_container(settings)
    app = create_app(settings, container, embedded_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield Api(client, container, settings)


def bearer(owner: str = OWNER, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_access_token(owner, TOKENS, **kwargs)}"}


def _tampered(token: str, owner: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(sub=owner, owner=owner)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


async def test_api_key_or_jwt_lets_the_owner_in(api: Api) -> None:
    assert (await api.client.get("/api/v1/conversations", headers={"X-API-Key": KEY})) \
        .status_code == 200
    assert (await api.client.get("/api/v1/conversations", headers=bearer())).status_code == 200


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing credentials"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing credentials"),
        ({"X-API-Key": "wrong"}, "invalid credentials"),
        ({"X-API-Key": ""}, "invalid credentials"),
        (bearer(now=datetime.now(UTC) - timedelta(hours=2)), "token expired"),
        ({"Authorization": "Bearer " + _tampered(create_access_token(OWNER, TOKENS), "AC-X")},
         "invalid token"),
        ({"Authorization": "Bearer " + create_access_token(
            OWNER, TokenSettings(secret_key="another-secret-of-sufficient-length!!"))},
         "invalid token"),
        ({"Authorization": "Bearer " + jwt.encode(
            {"sub": OWNER, "exp": datetime.now(UTC) + timedelta(minutes=5)}, SECRET)},
         "invalid token"),  # no iat
        ({"Authorization": "Bearer " + jwt.encode(
            {"sub": OWNER, "iat": datetime.now(UTC),
             "exp": datetime.now(UTC) + timedelta(minutes=5)}, None, algorithm="none")},
         "invalid token"),
        ({"Authorization": "Bearer not.a.jwt"}, "invalid token"),
    ],
    ids=["missing", "basic", "wrong-key", "empty-key", "expired", "tampered", "other-secret",
         "no-iat", "alg-none", "garbage"],
)
async def test_bad_credentials_are_401_with_the_envelope(
    api: Api, headers: dict[str, str], detail: str
) -> None:
    for path in ("/api/v1/conversations", "/api/v1/conversations/X/messages"):
        response = await api.client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"code": "HTTP_ERROR", "detail": detail}
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["x-request-id"]
    posted = await api.client.post("/api/v1/messages", headers=headers, json={})
    assert posted.status_code == 401  # before the body is even looked at


async def test_api_key_is_refused_when_none_is_configured(make_settings: MakeSettings) -> None:
    settings = make_settings(secret_key=SECRET)
    app = create_app(settings, embedded_worker=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE
    ) as client:
        response = await client.get("/api/v1/conversations", headers={"X-API-Key": ""})
    assert response.status_code == 401


async def test_conversations_page_by_cursor_and_stay_with_their_owner(api: Api) -> None:
    for n in range(3):
        await api.inbound(f"whatsapp:+55119999900{n:02d}", f"SM{n:032d}")
    first = (await api.client.get("/api/v1/conversations?limit=2", headers=bearer())).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (await api.client.get(
        f"/api/v1/conversations?limit=2&cursor={first['next_cursor']}", headers=bearer())).json()
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    ids = [c["id"] for c in first["items"] + second["items"]]
    assert len(set(ids)) == 3 and ids == sorted(ids)

    other = (await api.client.get("/api/v1/conversations", headers=bearer("AC-other"))).json()
    assert other == {"items": [], "next_cursor": None}
    foreign = await api.client.get(f"/api/v1/conversations/{ids[0]}/messages",
                                   headers=bearer("AC-other"))
    assert foreign.status_code == 404 and foreign.json()["code"] == "NOT_FOUND"
    mine = (await api.client.get(f"/api/v1/conversations/{ids[0]}/messages",
                                 headers=bearer())).json()
    assert [m["body"] for m in mine["items"]] == ["hi"]
    assert mine["items"][0]["direction"] == "inbound"


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [("limit=0", 422, "VALIDATION_ERROR"), ("limit=201", 422, "VALIDATION_ERROR"),
     ("cursor=%%%", 400, "INVALID_QUERY")],
)
async def test_bad_paging_parameters(api: Api, query: str, status: int, code: str) -> None:
    response = await api.client.get(f"/api/v1/conversations?{query}", headers=bearer())
    assert response.status_code == status and response.json()["code"] == code


async def test_queue_a_message_then_the_worker_sends_it(api: Api) -> None:
    to = "whatsapp:+5511977776666"
    await api.inbound(to, "SM" + "1" * 32)  # the contact wrote: the 24-hour window is open
    response = await api.client.post("/api/v1/messages", headers=bearer(),
                                     json={"to": to, "body": "from the operator"})
    assert response.status_code == 202
    queued = response.json()
    assert queued["status"] == "pending" and queued["duplicate"] is False
    assert queued["parts"] == 1
    assert await api.depth() == 2  # the inbound's reply and this send
    async with api.container[UnitOfWork] as uow:
        stored = await uow.repository(MessageRepository).get_by_id(queued["id"])
    assert stored is not None
    assert (stored.from_address, stored.to_address) == (DEV_PHONE_NUMBER, to)
    assert stored.conversation_id == queued["conversation_id"]
    from bootstrap.worker import build_runner

    await build_runner(api.container, api.settings).run(burst=True)  # type: ignore[call-arg]
    async with api.container[UnitOfWork] as uow:
        sent = await uow.repository(MessageRepository).get_by_id(queued["id"])
    assert sent is not None and sent.status is not DeliveryStatus.PENDING


async def test_one_idempotency_key_stores_and_queues_one_message(api: Api) -> None:
    body = {"to": "whatsapp:+5511977776666", "body": "once"}
    await api.inbound(body["to"], "SM" + "1" * 32)
    headers = bearer() | {"Idempotency-Key": "op-42"}
    responses = await asyncio.gather(*(
        api.client.post("/api/v1/messages", headers=headers, json=body) for _ in range(5)))
    assert [r.status_code for r in responses] == [202] * 5
    assert len({r.json()["id"] for r in responses}) == 1
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 4
    other = await api.client.post("/api/v1/messages", json=body,
                                  headers=bearer() | {"Idempotency-Key": "op-43"})
    assert other.json()["id"] != responses[0].json()["id"]
    assert await api.depth() == 3  # the inbound's reply and two sends


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [({"to": "whatsapp:nope", "body": "x"}, 422, "INVALID_WHATSAPP_ADDRESS"),
     ({"to": "whatsapp:+5511977776666", "body": "  "}, 422, "VALIDATION_ERROR"),
     ({"to": "whatsapp:+5511977776666", "body": "x", "media_urls": ["ftp://x"]}, 422,
      "VALIDATION_ERROR"),
     ({"body": "x"}, 422, "VALIDATION_ERROR")],
)
async def test_bad_messages_are_refused_and_store_nothing(
    api: Api, body: dict[str, Any], status: int, code: str
) -> None:
    response = await api.client.post("/api/v1/messages", headers=bearer(), json=body)
    assert response.status_code == status and response.json()["code"] == code
    assert await api.depth() == 0


async def test_an_owner_without_a_number_cannot_send(api: Api) -> None:
    response = await api.client.post("/api/v1/messages", headers=bearer("AC-other"),
                                     json={"to": "whatsapp:+5511977776666", "body": "x"})
    assert response.status_code == 403 and response.json()["code"] == "UNKNOWN_OWNER"


def test_wta_token_mints_a_jwt_for_the_owner(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.chdir("/")  # no .env
    assert wta(["token", "--owner", "AC-cli", "--minutes", "5"]) == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == claims["owner"] == "AC-cli"
    assert 290 <= claims["exp"] - claims["iat"] <= 300


@pytest.mark.integration
async def test_racing_requests_with_one_key_store_one_message_on_postgres(
    make_settings: MakeSettings, postgres_database: str
) -> None:
    # SQLite and the in-memory store serialize whole units of work; PostgreSQL does not,
    # so only here do racing requests really interleave (the conversation's version decides).
    from application.use_cases.queue_outbound import OutboundRequest, QueueOutboundMessage
    from bootstrap.container import Resources

    settings = make_settings(database_url=postgres_database, queue_backend="memory")
    migrate(settings)
    container = build_container(settings)
    from domain.templates import Template

    # A template: allowed whether or not the contact wrote in the last 24 hours.
    request = OutboundRequest(owner_id=OWNER, channel=DEV_PHONE_NUMBER,
                              to="whatsapp:+5511977776666", body="once", idempotency_key="k",
                              template=Template("HX" + "a" * 32))
    try:
        # The first request opens the conversation; the racers then share it.
        first = await container[QueueOutboundMessage].execute(request)
        fresh = dataclasses.replace(request, idempotency_key="k2")
        results = await asyncio.gather(
            *(container[QueueOutboundMessage].execute(fresh) for _ in range(6)))
    finally:
        await container[Resources].aclose()
    assert not first.duplicate
    assert len({r.message_id for r in results}) == 1
    assert sorted(r.duplicate for r in results) == [False] + [True] * 5


async def test_free_text_to_a_contact_who_never_wrote_is_refused_window_closed(api: Api) -> None:
    to = "whatsapp:+5511977776666"
    response = await api.client.post("/api/v1/messages", headers=bearer(),
                                     json={"to": to, "body": "hello out of the blue"})
    assert response.status_code == 409 and response.json()["code"] == "WINDOW_CLOSED"
    assert await api.depth() == 0


async def test_a_template_may_be_sent_outside_the_window(api: Api) -> None:
    to = "whatsapp:+5511977776666"
    response = await api.client.post("/api/v1/messages", headers=bearer(), json={
        "to": to, "content_sid": "HX" + "a" * 32, "variables": {"1": "Ana"}})
    assert response.status_code == 202, response.text
    assert response.json()["parts"] == 1
    async with api.container[UnitOfWork] as uow:
        stored = await uow.repository(MessageRepository).get_by_id(response.json()["id"])
    assert stored is not None
    assert stored.metadata["template"] == {
        "content_sid": "HX" + "a" * 32, "variables": {"1": "Ana"}, "fallback": False}


async def test_a_long_body_is_accepted_and_says_how_many_parts_go_out(api: Api) -> None:
    to = "whatsapp:+5511977776666"
    await api.inbound(to, "SM" + "1" * 32)
    body = "A sentence of some length. " * 150  # 4,050 characters
    response = await api.client.post("/api/v1/messages", headers=bearer(),
                                     json={"to": to, "body": body})
    assert response.status_code == 202, response.text
    assert response.json()["parts"] == 3


@pytest.mark.parametrize("body", [
    {"to": "whatsapp:+5511977776666", "content_sid": "HX123"},
    {"to": "whatsapp:+5511977776666", "body": "x", "variables": {"1": "a"}},
    {"to": "whatsapp:+5511977776666", "body": "x" * 4097},
])
async def test_bad_templates_and_oversized_bodies_are_refused(
    api: Api, body: dict[str, Any]
) -> None:
    response = await api.client.post("/api/v1/messages", headers=bearer(), json=body)
    assert response.status_code == 422 and response.json()["code"] == "VALIDATION_ERROR"
