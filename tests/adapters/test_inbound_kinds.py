"""Typed inbound kinds through the real app: Twilio's fields in, typed content stored and
shown by the read API; malformed location fields refused at the edge."""

from __future__ import annotations

from typing import Any

import pytest

from bootstrap.simulate import inbound_params, sign
from tests.adapters.test_internal_api import BASE, INBOUND, Api, api, bearer

__all__ = ["api"]  # the fixture, shared with the internal API's tests

CONTACT = "whatsapp:+5511977776666"


async def _post(api: Api, sid: str, body: str, **fields: str) -> Any:
    params = inbound_params(api.settings, body, CONTACT, sid) | fields
    signature = sign(api.settings, f"{BASE}{INBOUND}", params)
    return await api.client.post(INBOUND, data=params, headers={"X-Twilio-Signature": signature})


async def _messages(api: Api) -> list[dict[str, Any]]:
    [conversation] = (await api.client.get("/api/v1/conversations", headers=bearer())
                      ).json()["items"]
    response = await api.client.get(f"/api/v1/conversations/{conversation['id']}/messages",
                                    headers=bearer())
    return [m for m in response.json()["items"] if m["direction"] == "inbound"]


async def test_each_kind_is_stored_with_its_fields_and_shown(api: Api) -> None:
    sid = [f"SM{n:032x}" for n in range(1, 6)]
    assert (await _post(api, sid[0], "plain words")).status_code == 200
    assert (await _post(
        api, sid[1], "", Latitude="-23.5505", Longitude="-46.633308",
        Address="Praca da Se, Sao Paulo", Label="Meet here")).status_code == 200
    assert (await _post(api, sid[2], "Yes please", ButtonPayload="confirm-42",
                        ButtonText="Yes please")).status_code == 200
    assert (await _post(
        api, sid[3], "", NumMedia="2",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2",
        MediaContentType1="application/pdf")).status_code == 200
    assert (await _post(
        api, sid[4], "", NumMedia="1",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM2/Media/ME3",
        MediaContentType0="audio/ogg; codecs=opus")).status_code == 200

    text, location, button, media, voice = await _messages(api)
    assert (text["type"], text["content"]["kind"]) == ("text", "text")
    assert location["type"] == "location"
    assert location["content"]["location"] == {
        "latitude": -23.5505, "longitude": -46.633308,
        "address": "Praca da Se, Sao Paulo", "label": "Meet here"}
    assert button["type"] == "interactive"
    assert button["content"]["button"] == {"payload": "confirm-42", "text": "Yes please"}
    assert media["type"] == "media" and media["content"]["kind"] == "image"
    assert [m["kind"] for m in media["content"]["media"]] == ["image", "document"]
    assert voice["content"]["kind"] == "audio"


@pytest.mark.parametrize("fields", [
    {"Latitude": "91", "Longitude": "0"},
    {"Latitude": "10.5"},
    {"Latitude": "north", "Longitude": "0"},
    {"Latitude": "0", "Longitude": "-180.5"},
])
async def test_a_malformed_location_is_refused_and_nothing_is_stored(
    api: Api, fields: dict[str, str]
) -> None:
    response = await _post(api, "SM" + "f" * 32, "", **fields)
    assert response.status_code == 422
    assert response.json()["code"] in ("VALIDATION_ERROR", "INVALID_CONTENT")
    listed = (await api.client.get("/api/v1/conversations", headers=bearer())).json()
    assert listed["items"] == []
    assert await api.depth() == 0
