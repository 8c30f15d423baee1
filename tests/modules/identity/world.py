"""Two owners on different Twilio accounts and numbers, one app, the fake Twilio server.

Owner A is the deployment's default owner (the TWILIO_* settings); owner B is added
through the identity module's store, as an operator would.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from lagom import Container
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from application.identity.store import OwnerStore
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from bootstrap.app import create_app
from bootstrap.cli import migrate
from bootstrap.container import build_container
from bootstrap.modules.identity import MODULE as IDENTITY
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.resources import Resources
from bootstrap.settings import Settings
from bootstrap.telemetry import Telemetry
from bootstrap.worker import build_runner
from tests.conftest import MakeSettings
from tests.fakes.fake_twilio import FakeTwilioServer

BASE = "http://testserver"
INBOUND = "/channels/twilio/v1/webhooks/inbound"
STATUS = "/channels/twilio/v1/webhooks/status"
ADMIN_KEY = "admin-key-for-tests-0123456789"  # test-only value


@dataclass(frozen=True)
class Tenant:
    owner_id: str
    account_sid: str
    auth_token: str
    number: str  # bare E.164

    @property
    def address(self) -> str:
        return f"whatsapp:{self.number}"


A = Tenant("AC" + "a" * 32, "AC" + "a" * 32, "token-of-owner-a-0123456789abcdef", "+14155550101")
B = Tenant("ownerB", "AC" + "b" * 32, "token-of-owner-b-0123456789abcdef", "+14155550202")
CONTACT = "whatsapp:+5511988887777"


class World:
    def __init__(self, settings: Settings, container: Container, client: httpx.AsyncClient,
                 twilio: FakeTwilioServer) -> None:
        self.settings = settings
        self.container = container
        self.client = client
        self.twilio = twilio
        self._sids = 0

    @property
    def store(self) -> OwnerStore:
        return self.container[OwnerStore]

    def next_sid(self) -> str:
        self._sids += 1
        return f"SM{self._sids:032x}"

    async def inbound(self, *, account_sid: str, to: str, token: str, body: str = "hello",
                      sid: str | None = None, contact: str = CONTACT,
                      **extra: str) -> httpx.Response:
        """A webhook as Twilio posts it, signed with ``token``."""
        params = {"MessageSid": sid or self.next_sid(), "AccountSid": account_sid,
                  "From": contact, "To": to, "Body": body, "NumMedia": "0"} | extra
        return await self.post(INBOUND, params, token)

    async def post(self, path: str, params: dict[str, str], token: str) -> httpx.Response:
        signature = RequestValidator(token).compute_signature(f"{BASE}{path}", params)
        return await self.client.post(path, data=params,
                                      headers={"X-Twilio-Signature": str(signature)})

    async def as_tenant(self, tenant: Tenant, **kwargs: Any) -> httpx.Response:
        return await self.inbound(account_sid=tenant.account_sid, to=tenant.address,
                                  token=tenant.auth_token, **kwargs)

    async def stored_messages(self) -> int:
        async with self.container[UnitOfWork] as uow:
            return await uow.repository(MessageRepository).count()

    async def run_jobs(self) -> None:
        await build_runner(self.container, self.settings).run(burst=True)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def two_owners(make_settings: MakeSettings, twilio: FakeTwilioServer,
                     migrated: bool = False, telemetry: Telemetry | None = None,
                     **overrides: Any) -> AsyncIterator[World]:
    """``migrated``: the database is already there (a test migrated it its own way).
    ``telemetry``: the test's own providers, to read the metrics."""
    twilio.account_sid, twilio.auth_token = A.account_sid, A.auth_token
    twilio.other_accounts[B.account_sid] = B.auth_token
    settings = make_settings(
        twilio_account_sid=A.account_sid, twilio_auth_token=A.auth_token,
        twilio_phone_number=A.address, twilio_api_base_url=twilio.base_url,
        **overrides)
    if not migrated:
        migrate(settings)
    container = build_container(settings, telemetry, modules=[WHATSAPP, IDENTITY])
    app = create_app(settings, container, embedded_worker=False)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    world = World(settings, container, client, twilio)
    try:
        await world.store.add(name="Owner B", account_sid=B.account_sid,
                              auth_token=B.auth_token, numbers=[B.number], owner_id=B.owner_id)
        yield world
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        await container[Resources].aclose()
