"""The webhook adapter through the real ASGI app, on SQLite database and queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from lagom import Container

from application.errors import StorageUnavailable
from application.ports.job_queue import JobConsumer
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from bootstrap.app import create_app
from bootstrap.cli import migrate
from bootstrap.container import build_container
from bootstrap.settings import Settings
from bootstrap.simulate import inbound_params, sign
from domain.message import DeliveryStatus
from tests.conftest import MakeSettings

INBOUND = "/channels/twilio/v1/webhooks/inbound"
STATUS = "/channels/twilio/v1/webhooks/status"
BASE = "http://testserver"
CONTACT = "whatsapp:+5511988887777"


class Api:
    def __init__(self, client: httpx.AsyncClient, settings: Settings, container: Container) -> None:
        self.client = client
        self.settings = settings
        self.container = container

    def params(
        self, body: str = "hello", sid: str = "SM" + "1" * 32, **extra: str
    ) -> dict[str, str]:
        return inbound_params(self.settings, body, CONTACT, sid) | extra

    async def post(self, path: str, params: dict[str, str], *, signed_url: str | None = None,
                   signature: str | None = None, headers: dict[str, str] | None = None,
                   signed_params: dict[str, str] | None = None) -> httpx.Response:
        url = signed_url or f"{BASE}{path}"
        sig = signature if signature is not None else sign(
            self.settings, url, signed_params if signed_params is not None else params)
        all_headers = {"X-Twilio-Signature": sig} | (headers or {})
        return await self.client.post(path, data=params, headers=all_headers)

    async def counts(self) -> tuple[int, int]:
        async with self.container[UnitOfWork] as uow:
            messages = await uow.repository(MessageRepository).count()
        queue: Any = self.container[JobConsumer]
        return messages, await queue.depth()


ApiFactory = Callable[..., Any]


@pytest.fixture
async def make_api(make_settings: MakeSettings) -> AsyncIterator[ApiFactory]:
    stack: list[Any] = []

    async def build(container_hook: Callable[[Container], None] | None = None,
                    **overrides: Any) -> Api:
        settings = make_settings(**overrides)
        migrate(settings)
        container = build_container(settings)
        if container_hook:
            # A child container: its definitions override the parent's.
            container = container.clone()
            container_hook(container)
        app = create_app(settings, container, embedded_worker=False)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url=BASE)
        stack.append((client, lifespan))
        return Api(client, settings, container)

    yield build
    for client, lifespan in stack:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_signed_webhook_is_stored_and_answered_with_empty_twiml(make_api: ApiFactory) -> None:
    api = await make_api()
    response = await api.post(INBOUND, api.params())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.endswith("<Response/>")
    assert response.headers["x-request-id"]
    assert await api.counts() == (1, 1)


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", None])
async def test_forged_or_missing_signature_is_403_and_stores_nothing(
    make_api: ApiFactory, signature: str | None
) -> None:
    api = await make_api()
    params = api.params()
    if signature is None:  # a real signature, but of different content
        signed = params | {"Body": "something else"}
        response = await api.post(INBOUND, params, signed_params=signed)
    else:
        response = await api.post(INBOUND, params, signature=signature)
    assert response.status_code == 403
    assert response.json() == {"code": "INVALID_SIGNATURE", "detail": "invalid Twilio signature"}
    assert response.headers["x-request-id"]
    assert await api.counts() == (0, 0)


async def test_unknown_account_is_403(make_api: ApiFactory) -> None:
    api = await make_api()
    response = await api.post(INBOUND, api.params(AccountSid="AC" + "9" * 32))
    assert response.status_code == 403
    assert response.json()["code"] == "UNKNOWN_OWNER"
    assert await api.counts() == (0, 0)


@pytest.mark.parametrize("field", ["MessageSid", "From"])
async def test_body_missing_a_required_field_is_422_with_the_envelope(
    make_api: ApiFactory, field: str
) -> None:
    api = await make_api()
    params = api.params()
    del params[field]
    response = await api.post(INBOUND, params)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert [e["loc"] for e in body["detail"]] == [["body", field]]
    assert await api.counts() == (0, 0)


async def test_garbage_sender_is_422_naming_the_field(make_api: ApiFactory) -> None:
    api = await make_api()
    response = await api.post(INBOUND, api.params(From="whatsapp:not-a-number"))
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "From"]]
    assert await api.counts() == (0, 0)


async def test_a_non_form_body_is_refused_without_storing(make_api: ApiFactory) -> None:
    api = await make_api()
    response = await api.client.post(INBOUND, content=b"\xff\x00{not a form",
                                     headers={"Content-Type": "application/json"})
    assert response.status_code == 415
    assert response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert await api.counts() == (0, 0)


async def test_signature_covers_parameters_the_project_does_not_know(make_api: ApiFactory) -> None:
    api = await make_api()
    params = api.params(ChannelMetadata='{"type":"whatsapp"}', SomeFutureTwilioField="x")
    assert (await api.post(INBOUND, params)).status_code == 200
    # The same unknown field, added after signing, breaks the signature.
    tampered = api.params(sid="SM" + "2" * 32)
    response = await api.post(INBOUND, tampered | {"SomeFutureTwilioField": "x"},
                              signed_params=tampered)
    assert response.status_code == 403
    async with api.container[UnitOfWork] as uow:
        stored = await uow.repository(MessageRepository).get_by_provider_sid("SM" + "1" * 32)
    assert stored is not None
    assert stored.metadata["twilio"]["SomeFutureTwilioField"] == "x"


async def test_public_https_url_validates_behind_a_plain_http_proxy(make_api: ApiFactory) -> None:
    public = "https://bot.example.com"
    api = await make_api(api_public_base_url=public)
    ok = await api.post(INBOUND, api.params(), signed_url=f"{public}{INBOUND}")
    assert ok.status_code == 200
    internal = await api.post(INBOUND, api.params(sid="SM" + "3" * 32))
    assert internal.status_code == 403


async def test_forwarded_headers_give_the_public_url_only_from_a_trusted_proxy(
    make_api: ApiFactory,
) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.org"}
    signed_url = f"https://public.example.org{INBOUND}"
    # The ASGI test client's peer is 127.0.0.1.
    untrusted = await make_api(api_trusted_proxies="10.0.0.0/8")
    refused = await untrusted.post(INBOUND, untrusted.params(), signed_url=signed_url,
                                   headers=forwarded | {"Host": "public.example.org"})
    assert refused.status_code == 403
    assert await untrusted.counts() == (0, 0)
    trusted = await make_api(api_trusted_proxies="127.0.0.1/32, ::1")
    response = await trusted.post(INBOUND, trusted.params(), signed_url=signed_url,
                                  headers=forwarded)
    assert response.status_code == 200


async def test_overlapping_retries_of_one_message_store_one_and_queue_one(
    make_api: ApiFactory,
) -> None:
    api = await make_api()
    responses = await asyncio.gather(*(api.post(INBOUND, api.params()) for _ in range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert await api.counts() == (1, 1)


async def test_status_callback_updates_delivery_status_forward_only(make_api: ApiFactory) -> None:
    api = await make_api()
    await api.post(INBOUND, api.params())
    sid = "SM" + "1" * 32
    # An inbound message is final at 'received'; use an outbound one for the callback.
    async with api.container[UnitOfWork] as uow:
        message = await uow.repository(MessageRepository).get_by_provider_sid(sid)
        assert message is not None
        await uow.repository(MessageRepository).compare_and_set_status(
            message.id, {DeliveryStatus.RECEIVED}, DeliveryStatus.PENDING, message.created_at)
        await uow.commit()
    await api.post(STATUS, {"MessageSid": sid, "MessageStatus": "delivered",
                            "AccountSid": api.settings.owner_account_sid})
    response = await api.post(STATUS, {"MessageSid": sid, "MessageStatus": "sent",
                                       "AccountSid": api.settings.owner_account_sid})
    assert response.status_code == 200
    async with api.container[UnitOfWork] as uow:
        stored = await uow.repository(MessageRepository).get_by_provider_sid(sid)
    assert stored is not None and stored.status is DeliveryStatus.DELIVERED
    forged = await api.post(STATUS, {"MessageSid": sid, "MessageStatus": "read"}, signature="x")
    assert forged.status_code == 403


async def test_request_id_is_echoed_or_generated(make_api: ApiFactory) -> None:
    api = await make_api()
    given = await api.client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    junk = await api.client.get("/health/live", headers={"X-Request-ID": "bad value\twith junk"})
    assert junk.headers["x-request-id"] != "bad value\twith junk"
    assert len(junk.headers["x-request-id"]) == 32


async def test_health_routes(make_api: ApiFactory) -> None:
    api = await make_api()
    assert (await api.client.get("/health/live")).json() == {"status": "ok"}
    ready = await api.client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok",
                            "checks": {"database": "ok", "queue": "ok", "schema": "ok"}}


async def test_readiness_reports_a_database_that_is_down(make_settings: MakeSettings) -> None:
    settings = make_settings(database_url="sqlite:////proc/no-such-dir/app.db")
    app = create_app(settings, embedded_worker=False)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=transport, base_url=BASE
    ) as client:
        ready = await client.get("/health/ready")
        live = await client.get("/health/live")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("unavailable")
    assert ready.json()["checks"]["queue"] == "ok"
    assert live.status_code == 200


class _BrokenUnitOfWork:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def __aenter__(self) -> Any:
        raise self.error

    async def __aexit__(self, *args: object) -> None:
        return None


async def test_storage_failure_is_503_and_queues_nothing(make_api: ApiFactory) -> None:
    def break_storage(container: Container) -> None:
        container[UnitOfWork] = lambda: _BrokenUnitOfWork(StorageUnavailable("db down"))  # type: ignore[assignment]

    api = await make_api(container_hook=break_storage)
    response = await api.post(INBOUND, api.params())
    assert response.status_code == 503
    assert response.json()["code"] == "STORAGE_UNAVAILABLE"
    queue: Any = api.container[JobConsumer]
    assert await queue.depth() == 0


async def test_unexpected_error_is_500_without_stack_or_secret(make_api: ApiFactory) -> None:
    def explode(container: Container) -> None:
        container[UnitOfWork] = lambda: _BrokenUnitOfWork(  # type: ignore[assignment]
            RuntimeError("password=hunter2 at Traceback"))

    api = await make_api(container_hook=explode)
    response = await api.post(INBOUND, api.params(), headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json() == {"code": "INTERNAL_ERROR", "detail": "internal error"}
    assert "hunter2" not in response.text
    assert response.headers["x-request-id"] == "req-500"
