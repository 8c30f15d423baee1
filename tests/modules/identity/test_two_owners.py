"""Two owners on different accounts and numbers: each one's webhooks validate only with
its own token, its replies and media go out with its own credentials and number (as the
fake Twilio server sees them), and a refused webhook stores nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from application.identity.directory import StoredOwnerDirectory
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from domain.identity.owner import Plan
from tests.conftest import MakeSettings
from tests.fakes.fake_twilio import FakeTwilioServer
from tests.modules.identity.world import CONTACT, STATUS, A, B, two_owners


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


async def test_each_owners_webhooks_validate_only_with_its_own_token(
    make_settings: MakeSettings, twilio: FakeTwilioServer
) -> None:
    async with two_owners(make_settings, twilio) as world:
        assert (await world.as_tenant(A)).status_code == 200
        assert (await world.as_tenant(B)).status_code == 200
        refused = [
            # B's account and number, signed with A's token (and the other way round).
            await world.inbound(account_sid=B.account_sid, to=B.address, token=A.auth_token),
            await world.inbound(account_sid=A.account_sid, to=A.address, token=B.auth_token),
            # A known account with a number of another owner, with its own valid token.
            await world.inbound(account_sid=A.account_sid, to=B.address, token=A.auth_token),
            await world.inbound(account_sid=B.account_sid, to=A.address, token=B.auth_token),
            # An unknown account, an unknown number, no account at all.
            await world.inbound(account_sid="AC" + "c" * 32, to=A.address, token=A.auth_token),
            await world.inbound(account_sid=A.account_sid, to="whatsapp:+14155559999",
                                token=A.auth_token),
        ]
        assert [r.status_code for r in refused] == [403] * len(refused)
        assert {r.json()["code"] for r in refused} == {"INVALID_SIGNATURE", "UNKNOWN_OWNER"}
        assert await world.stored_messages() == 2
        for response in refused:
            assert A.auth_token not in response.text and B.auth_token not in response.text


async def test_replies_go_out_with_each_owners_credentials_and_number(
    make_settings: MakeSettings, twilio: FakeTwilioServer
) -> None:
    async with two_owners(make_settings, twilio) as world:
        assert (await world.as_tenant(A, body="from a")).status_code == 200
        assert (await world.as_tenant(B, body="from b")).status_code == 200
        await world.run_jobs()
        sent = {s.body: s for s in twilio.sent}
        assert set(sent) == {"Echo: from a", "Echo: from b"}
        to_a, to_b = sent["Echo: from a"], sent["Echo: from b"]
        assert (to_a.account_sid, to_a.auth_username, to_a.from_, to_a.to) == (
            A.account_sid, A.account_sid, A.address, CONTACT)
        assert (to_b.account_sid, to_b.auth_username, to_b.from_, to_b.to) == (
            B.account_sid, B.account_sid, B.address, CONTACT)
        # Both were refused by the fake had either used the other's token.
        assert all(a.status_code == 201 for a in twilio.attempts)
        async with world.container[UnitOfWork] as uow:
            messages = uow.repository(MessageRepository)
            stored = await messages.find_by(provider_sid=to_b.sid)
        assert [m.owner_id for m in stored] == [B.owner_id]


async def test_status_callbacks_resolve_the_owner_the_same_way(
    make_settings: MakeSettings, twilio: FakeTwilioServer
) -> None:
    async with two_owners(make_settings, twilio) as world:
        await world.as_tenant(B, body="status please")
        await world.run_jobs()
        [sent] = twilio.sent
        params = {"MessageSid": sent.sid or "", "MessageStatus": "delivered",
                  "AccountSid": B.account_sid, "To": CONTACT, "From": B.address}
        # The status callback comes *from* the owner's number: ``To`` is the contact's.
        ok = await world.post(STATUS, params, B.auth_token)
        forged = await world.post(STATUS, params, A.auth_token)
        assert (ok.status_code, forged.status_code) == (200, 403)


async def test_media_is_fetched_with_the_owners_own_credentials(
    make_settings: MakeSettings, twilio: FakeTwilioServer
) -> None:
    async with two_owners(make_settings, twilio) as world:
        url = twilio.host_media(b"\x89PNG fake", "image/png", account_sid=B.account_sid)
        response = await world.as_tenant(B, body="", NumMedia="1", MediaUrl0=url,
                                          MediaContentType0="image/png")
        assert response.status_code == 200
        await world.run_jobs()
        assert [authenticated for path, authenticated in twilio.media_requests
                if B.account_sid in path] == [True]


async def test_a_plan_without_media_keeps_the_reference_and_fetches_nothing(
    make_settings: MakeSettings, twilio: FakeTwilioServer
) -> None:
    async with two_owners(make_settings, twilio) as world:
        await world.store.put_plan(Plan(id="text-only", name="Text only", media=False))
        await world.store.update(B.owner_id, plan_id="text-only")
        url = twilio.host_media(b"\x89PNG fake", "image/png", account_sid=B.account_sid)
        response = await world.as_tenant(B, body="see this", NumMedia="1", MediaUrl0=url,
                                          MediaContentType0="image/png")
        assert response.status_code == 200
        await world.run_jobs()
        assert twilio.media_requests == []
        assert [s.body for s in twilio.sent] == ["Echo: see this"]  # still answered
        async with world.container[UnitOfWork] as uow:
            inbound = await uow.repository(MessageRepository).get_by_provider_sid(
                f"SM{1:032x}")  # the world's first MessageSid
        assert inbound is not None
        [item] = inbound.metadata["media"]
        assert (item["url"], item["error"]) == (url, "media is not in the owner's plan")


async def test_a_disabled_owners_webhooks_get_403_and_store_nothing(
    make_settings: MakeSettings, twilio: FakeTwilioServer
) -> None:
    async with two_owners(make_settings, twilio) as world:
        await world.store.disable(B.owner_id)
        response = await world.as_tenant(B)
        assert (response.status_code, response.json()["code"]) == (403, "UNKNOWN_OWNER")
        assert await world.stored_messages() == 0
        assert (await world.as_tenant(A)).status_code == 200


async def test_tokens_are_sealed_at_rest_and_never_shown(
    make_settings: MakeSettings, twilio: FakeTwilioServer
) -> None:
    async with two_owners(make_settings, twilio) as world:
        directory = world.container[StoredOwnerDirectory]
        owner = await directory.by_id(B.owner_id)  # the default owner A is provisioned too
        assert owner is not None and owner.auth_token == B.auth_token
        assert B.auth_token not in repr(owner)
        engine = create_engine(f"sqlite:///{world.settings.database_url.split(':///')[1]}")
        try:
            with engine.connect() as connection:
                rows = connection.execute(text(
                    "SELECT id, sealed_token FROM identity_owners")).all()
        finally:
            engine.dispose()
        assert {row[0] for row in rows} == {A.owner_id, B.owner_id}
        for _, sealed in rows:
            assert A.auth_token not in sealed and B.auth_token not in sealed
        views = await world.store.owners()
        assert B.auth_token not in repr(views) and A.auth_token not in repr(views)
