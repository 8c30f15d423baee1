"""One error envelope for every failure, and production's refusals (settings, docs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.fastapi.errors import STATUS_BY_ERROR, install_error_handlers
from adapters.fastapi.request_id import RequestIdMiddleware
from application.errors import ApplicationError, StorageUnavailable
from bootstrap.app import create_app
from bootstrap.settings import Settings, SettingsError, load_settings
from domain.errors import DomainError, DuplicateMessage
from tests.conftest import MakeSettings
from tests.observability.conftest import LogCapture

BASE = "http://testserver"
LEAKY = "sk-live-0123456789abcdef-leaked"


def _instance(kind: type[Exception]) -> Exception:
    return kind("sid-1") if kind is DuplicateMessage else kind("what went wrong")


def error_app(error: Exception) -> FastAPI:
    """The project's handlers and middleware on one route that raises ``error``."""
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return app


async def call(app: FastAPI, path: str = "/boom", method: str = "GET") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        return await client.request(method, path, headers={"X-Request-ID": "req-77"})


@pytest.mark.parametrize("kind", list(STATUS_BY_ERROR), ids=lambda k: k.__name__)
async def test_each_domain_and_application_error_maps_through_the_table(
    kind: type[Exception],
) -> None:
    response = await call(error_app(_instance(kind)))
    status = STATUS_BY_ERROR[kind]
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"code", "detail"} and body["code"] == kind.code  # type: ignore[attr-defined]
    assert response.headers["x-request-id"] == "req-77"
    if status >= 500:
        assert "what went wrong" not in response.text  # infrastructure text stays inside


async def test_unlisted_domain_error_is_422_and_unlisted_application_error_is_opaque_500(
) -> None:
    class Odd(DomainError):
        code = "ODD"

    class Weird(ApplicationError):
        code = "WEIRD"

    odd = await call(error_app(Odd("odd input")))
    assert (odd.status_code, odd.json()) == (422, {"code": "ODD", "detail": "odd input"})
    weird = await call(error_app(Weird(f"failed with {LEAKY}")))
    assert weird.status_code == 500 and LEAKY not in weird.text
    assert weird.json() == {"code": "WEIRD", "detail": "internal error"}


async def test_storage_errors_hide_their_message() -> None:
    response = await call(error_app(StorageUnavailable("postgresql://u:pw@db failed")))
    assert response.status_code == 503
    assert response.json()["detail"] == "storage is unavailable, try again later"


async def test_unexpected_error_is_500_without_stack_and_logged_with_it(
    make_settings: MakeSettings,
) -> None:
    logs = LogCapture()  # reset by _no_lingering_logging
    logs.configure(make_settings(log_format="json"))
    response = await call(error_app(RuntimeError(f"kaput {LEAKY}")))
    assert response.status_code == 500
    assert response.json() == {"code": "INTERNAL_ERROR", "detail": "internal error"}
    assert response.headers["x-request-id"] == "req-77"
    assert "Traceback" not in response.text and LEAKY not in response.text
    [line] = [entry for entry in logs.lines() if entry["level"] == "error"]
    assert line["request_id"] == "req-77"
    assert "Traceback" in line["exception"] and "RuntimeError: kaput" in line["exception"]
    assert LEAKY not in logs.text  # the log has the stack, not the secret


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/no/such/route", 404),
    ("GET", "/channels/twilio/v1/webhooks/inbound", 405),
])
async def test_http_errors_use_the_envelope(
    make_settings: MakeSettings, method: str, path: str, status: int
) -> None:
    app = create_app(make_settings(), embedded_worker=False)
    async with app.router.lifespan_context(app):
        response = await call(app, path, method)
    assert response.status_code == status
    assert response.json()["code"] == "HTTP_ERROR"
    assert response.headers["x-request-id"] == "req-77"


# --- production -------------------------------------------------------------------------

SAFE_PRODUCTION: dict[str, Any] = {
    "api_environment": "production", "secret_key": "a-real-secret-of-enough-length-32b!",
    "twilio_auth_token": "token", "twilio_account_sid": "AC" + "1" * 32,
    "api_public_base_url": "https://bot.example.com",
}


@pytest.mark.parametrize(("override", "named"), [
    ({"secret_key": "change-me-in-production"}, "SECRET_KEY"),
    ({"twilio_validate_signature": False}, "TWILIO_VALIDATE_SIGNATURE"),
    ({"twilio_auth_token": None}, "TWILIO_AUTH_TOKEN"),
    ({"secret_key": "x"}, "SECRET_KEY"),
    ({"secret_key": "s3cr3t-but-only-31-bytes-long!!"}, "SECRET_KEY"),
    ({"api_public_base_url": None}, "API_PUBLIC_BASE_URL"),
])
def test_production_refuses_to_start_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, override: dict[str, Any], named: str
) -> None:
    for key, value in (SAFE_PRODUCTION | override).items():
        if value is not None:
            monkeypatch.setenv(key.upper(), str(value))
    with pytest.raises(SettingsError, match=named) as refused:
        load_settings(env_file=None)
    secret = str((SAFE_PRODUCTION | override)["secret_key"])
    assert secret not in str(refused.value)  # never echoed


def test_production_starts_with_safe_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SAFE_PRODUCTION.items():
        monkeypatch.setenv(key.upper(), str(value))
    assert load_settings(env_file=None).api_public_base_url == "https://bot.example.com"


def test_algorithm_must_be_an_hmac_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALGORITHM", "none")
    with pytest.raises(SettingsError, match="ALGORITHM"):
        load_settings(env_file=None)


@pytest.mark.parametrize(("docs", "expected"), [(None, 404), (True, 200), (False, 404)])
async def test_production_docs_routes_are_closed_unless_asked(
    make_settings: MakeSettings, docs: bool | None, expected: int
) -> None:
    settings: Settings = make_settings(**SAFE_PRODUCTION, api_docs_enabled=docs)
    assert settings.effective_log_format == "json"
    app = create_app(settings, embedded_worker=False)
    async with app.router.lifespan_context(app):
        for path in ("/docs", "/openapi.json"):
            assert (await call(app, path)).status_code == expected


async def test_development_opens_docs_by_default(make_settings: MakeSettings) -> None:
    app = create_app(make_settings(api_environment="development"), embedded_worker=False)
    async with app.router.lifespan_context(app):
        assert (await call(app, "/openapi.json")).status_code == 200


@pytest.fixture(autouse=True)
async def _no_lingering_logging() -> AsyncIterator[None]:
    yield
    from bootstrap.logging import reset_logging

    reset_logging()  # create_app configures logging; keep later tests' output clean
