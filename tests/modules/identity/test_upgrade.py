"""An existing single-owner database (schema 0004, the last before identity; messages
stored under the account SID) upgrades to the identity schema without losing a message:
the default owner is provisioned under that id, reads its old conversations and
continues them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from adapters.fastapi.security import create_access_token
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from application.use_cases.receive_inbound import InboundMessage, ReceiveInboundMessage
from bootstrap.app import token_settings
from bootstrap.container import build_container
from bootstrap.migrator import alembic_url
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.resources import Resources
from tests.adapters.alembic_helpers import migrate
from tests.conftest import MakeSettings
from tests.fakes.fake_twilio import FakeTwilioServer
from tests.modules.identity.world import CONTACT, A, two_owners

OLD_MESSAGES = 5


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "sqlite":
        return {}
    return {"database_backend": "postgres",
            "database_url": request.getfixturevalue("postgres_database")}


async def test_a_single_owner_database_upgrades_without_losing_a_message(
    make_settings: MakeSettings, twilio: FakeTwilioServer, backend: dict[str, str]
) -> None:
    settings = make_settings(twilio_account_sid=A.account_sid,
                             twilio_auth_token=A.auth_token, twilio_phone_number=A.address,
                             twilio_api_base_url=twilio.base_url, **backend)
    url = alembic_url(settings)
    assert url is not None
    migrate(url, "0004")
    # The deployment as it was: one owner, no identity module, messages under its SID.
    before = build_container(settings, modules=[WHATSAPP])
    try:
        receive = before[ReceiveInboundMessage]
        for n in range(OLD_MESSAGES):
            await receive.execute(InboundMessage(
                message_sid=f"SM{n:031x}f", owner_id=A.account_sid, from_address=CONTACT,
                to_address=A.address, body=f"old {n}"))
    finally:
        await before[Resources].aclose()
    migrate(url)
    async with two_owners(make_settings, twilio, migrated=True, **backend) as world:
        assert await world.stored_messages() == OLD_MESSAGES
        # The next message from the same contact continues the old conversation.
        assert (await world.as_tenant(A, body="after the upgrade")).status_code == 200
        token = create_access_token(A.owner_id, token_settings(world.settings),
                                    expires_in=timedelta(minutes=5))
        listed = await world.client.get("/api/v1/conversations",
                                        headers={"Authorization": f"Bearer {token}"})
        [conversation] = listed.json()["items"]
        page = await world.client.get(
            f"/api/v1/conversations/{conversation['id']}/messages?limit=100",
            headers={"Authorization": f"Bearer {token}"})
        bodies = {m["body"] for m in page.json()["items"]}
        assert {f"old {n}" for n in range(OLD_MESSAGES)} | {"after the upgrade"} <= bodies
        [owner] = [o for o in await world.store.owners() if o.id == A.owner_id]
        assert owner.numbers == (A.number,)
        async with world.container[UnitOfWork] as uow:
            assert await uow.repository(MessageRepository).count() == OLD_MESSAGES + 1
