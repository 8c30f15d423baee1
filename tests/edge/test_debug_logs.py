"""DEBUG logs keep message text and phone numbers out: no SQL parameters are printed."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from bootstrap.app import create_app
from bootstrap.cli import migrate
from bootstrap.logging import reset_logging
from tests.conftest import MakeSettings
from tests.edge.server import CONTACT, INBOUND, inbound, sign
from tests.observability.conftest import LogCapture

SECRET_TEXT = "my card number is 4111 1111 1111 1111"


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    yield capture
    reset_logging()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_debug_logs_carry_no_sql_parameters(
    request: pytest.FixtureRequest, make_settings: MakeSettings, logs: LogCapture, backend: str
) -> None:
    overrides: dict[str, str] = {"log_level": "DEBUG", "log_format": "json"}
    if backend == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_database").replace(
            "postgresql://", "postgresql+asyncpg://")
    settings = make_settings(**overrides)
    migrate(settings)
    logs.configure(settings)
    app = create_app(settings, embedded_worker=False)
    params = inbound("SM" + "f" * 32, SECRET_TEXT)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.post(INBOUND, content=urlencode(params).encode(), headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(f"http://testserver{INBOUND}", params)})
        assert response.status_code == 200
        listed = await client.get("/api/v1/conversations",
                                  headers={"X-API-Key": "unset"})  # a 401 is fine here
        assert listed.status_code == 401
    assert logs.text  # DEBUG is on and the request was logged
    sql_lines = [line for line in logs.lines()
                 if str(line.get("logger", "")).startswith(("sqlalchemy", "aiosqlite", "asyncpg"))]
    for line in sql_lines:
        assert SECRET_TEXT not in str(line) and CONTACT.removeprefix("whatsapp:") not in str(line)
    assert SECRET_TEXT not in logs.text
