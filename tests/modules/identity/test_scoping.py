"""Every owner-facing route stays scoped: owner A's credential never reads or acts on
owner B's data, and the admin API takes only its own key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from adapters.fastapi.security import create_access_token
from bootstrap.app import token_settings
from tests.conftest import MakeSettings
from tests.fakes.fake_twilio import FakeTwilioServer
from tests.modules.identity.world import ADMIN_KEY, CONTACT, A, B, World, two_owners

OTHER_CONTACT = "whatsapp:+5511977776666"


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


def bearer(world: World, owner_id: str) -> dict[str, str]:
    token = create_access_token(owner_id, token_settings(world.settings),
                                expires_in=timedelta(minutes=5))
    return {"Authorization": f"Bearer {token}"}


async def conversations(world: World, owner_id: str) -> list[dict[str, object]]:
    response = await world.client.get("/api/v1/conversations",
                                      headers=bearer(world, owner_id))
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def test_an_owners_key_reads_none_of_another_owners_data_on_any_route(
    make_settings: MakeSettings, twilio: FakeTwilioServer
) -> None:
    async with two_owners(make_settings, twilio) as world:
        await world.as_tenant(A, body="a's secret", contact=CONTACT)
        await world.as_tenant(B, body="b's secret", contact=OTHER_CONTACT)
        [mine] = await conversations(world, A.owner_id)
        [theirs] = await conversations(world, B.owner_id)
        assert mine["id"] != theirs["id"]
        # GET /api/v1/conversations/{id}/messages: the other owner's id is not found.
        own = await world.client.get(f"/api/v1/conversations/{mine['id']}/messages",
                                     headers=bearer(world, A.owner_id))
        other = await world.client.get(f"/api/v1/conversations/{theirs['id']}/messages",
                                       headers=bearer(world, A.owner_id))
        assert own.status_code == 200 and "a's secret" in own.text
        assert other.status_code == 404 and "b's secret" not in other.text
        # POST /api/v1/messages: A's key sends from A's number only, into A's data.
        sent = await world.client.post(
            "/api/v1/messages", json={"to": CONTACT, "body": "from a's key"},
            headers=bearer(world, A.owner_id) | {"Idempotency-Key": "k1"})
        assert sent.status_code == 202, sent.text
        await world.run_jobs()
        [out] = [s for s in twilio.sent if s.body == "from a's key"]
        assert (out.account_sid, out.from_) == (A.account_sid, A.address)
        # B still sees exactly its one conversation, untouched by A's send.
        [still] = await conversations(world, B.owner_id)
        assert still["id"] == theirs["id"]


async def test_a_disabled_or_unknown_owner_cannot_send(
    make_settings: MakeSettings, twilio: FakeTwilioServer
) -> None:
    async with two_owners(make_settings, twilio) as world:
        await world.as_tenant(B)
        await world.store.disable(B.owner_id)
        for owner_id in (B.owner_id, "nobody"):
            response = await world.client.post(
                "/api/v1/messages", json={"to": CONTACT, "body": "x"},
                headers=bearer(world, owner_id))
            assert response.status_code == 403, response.text


async def test_the_admin_api_is_off_without_its_key(
    make_settings: MakeSettings, twilio: FakeTwilioServer
) -> None:
    async with two_owners(make_settings, twilio) as world:
        response = await world.client.get("/api/v1/admin/owners",
                                          headers={"X-Admin-Key": ADMIN_KEY})
        assert response.status_code == 404


async def test_the_admin_api_manages_owners_with_its_own_credential_only(
    make_settings: MakeSettings, twilio: FakeTwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_ADMIN_API_KEY", ADMIN_KEY)
    async with two_owners(make_settings, twilio) as world:
        admin = {"X-Admin-Key": ADMIN_KEY}
        # An owner's credentials (its JWT, the internal API key) are not the admin's.
        for headers in (bearer(world, A.owner_id), {"X-Admin-Key": "wrong-key-0123456789"},
                        {}):
            assert (await world.client.get("/api/v1/admin/owners",
                                           headers=headers)).status_code == 401
        c_sid = "AC" + "c" * 32
        c_token = "token-of-owner-c-0123456789abcdef"
        created = await world.client.post("/api/v1/admin/owners", headers=admin, json={
            "name": "Owner C", "account_sid": c_sid, "auth_token": c_token,
            "numbers": ["+14155550303"]})
        assert created.status_code == 201, created.text
        assert c_token not in created.text and created.json()["id"] == c_sid
        taken = await world.client.post(f"/api/v1/admin/owners/{c_sid}/numbers",
                                        headers=admin, json={"number": B.number})
        assert (taken.status_code, taken.json()["code"]) == (422, "NUMBER_TAKEN")
        listing = await world.client.get("/api/v1/admin/owners", headers=admin)
        assert {o["id"] for o in listing.json()} == {B.owner_id, c_sid}
        assert c_token not in listing.text and B.auth_token not in listing.text
        plan = await world.client.put("/api/v1/admin/plans/basic", headers=admin,
                                      json={"name": "Basic", "monthly_quota": 100})
        assert plan.status_code == 200, plan.text
        patched = await world.client.patch(f"/api/v1/admin/owners/{c_sid}", headers=admin,
                                           json={"plan_id": "basic", "answers": False})
        assert patched.json()["plan_id"] == "basic" and patched.json()["answers"] is False
        missing = await world.client.get("/api/v1/admin/owners/nobody", headers=admin)
        assert missing.status_code == 404
        # The new owner's webhooks validate with its token at once (same process).
        twilio.other_accounts[c_sid] = c_token
        ok = await world.inbound(account_sid=c_sid, to="whatsapp:+14155550303", token=c_token)
        assert ok.status_code == 200
        rotated = await world.client.put(f"/api/v1/admin/owners/{c_sid}/token",
                                         headers=admin, json={"auth_token": "new-" + c_token})
        assert rotated.status_code == 200 and "new-" + c_token not in rotated.text
        old = await world.inbound(account_sid=c_sid, to="whatsapp:+14155550303", token=c_token)
        new = await world.inbound(account_sid=c_sid, to="whatsapp:+14155550303",
                                  token="new-" + c_token)
        assert (old.status_code, new.status_code) == (403, 200)
        disabled = await world.client.post(f"/api/v1/admin/owners/{c_sid}/disable",
                                           headers=admin)
        assert disabled.json()["enabled"] is False
        refused = await world.inbound(account_sid=c_sid, to="whatsapp:+14155550303",
                                      token="new-" + c_token)
        assert refused.status_code == 403

