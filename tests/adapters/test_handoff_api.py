"""The handoff routes through the real ASGI app: take, show the holder, release, scoping."""

from __future__ import annotations

from tests.adapters.test_internal_api import KEY, Api, api, bearer

__all__ = ["api"]  # the fixture, shared with the internal API's tests

HEADERS = {"X-API-Key": KEY}


async def _conversation_id(api: Api) -> str:
    await api.inbound("whatsapp:+5511911112222", "SM" + "c" * 32)
    listed = (await api.client.get("/api/v1/conversations", headers=HEADERS)).json()
    [conversation] = listed["items"]
    assert conversation["holder"] == "bot" and conversation["held_until"] is None
    return str(conversation["id"])


async def test_an_agent_takes_the_conversation_and_gives_it_back(api: Api) -> None:
    cid = await _conversation_id(api)

    taken = await api.client.post(f"/api/v1/conversations/{cid}/handoff", headers=HEADERS,
                                  json={"agent_id": "agent-ana", "minutes": 10})
    assert taken.status_code == 200, taken.text
    body = taken.json()
    assert body["holder"] == "agent-ana" and body["held_since"] and body["held_until"]

    [listed] = (await api.client.get("/api/v1/conversations", headers=HEADERS)).json()["items"]
    assert listed["holder"] == "agent-ana"

    released = await api.client.post(f"/api/v1/conversations/{cid}/release", headers=bearer())
    assert released.status_code == 200
    assert released.json()["holder"] == "bot"


async def test_handoff_is_scoped_to_the_owner_and_validated(api: Api) -> None:
    cid = await _conversation_id(api)
    other = await api.client.post(f"/api/v1/conversations/{cid}/handoff",
                                  headers=bearer("AC" + "9" * 32), json={"agent_id": "x"})
    assert other.status_code == 404
    unknown = await api.client.post("/api/v1/conversations/" + "0" * 26 + "/release",
                                    headers=HEADERS)
    assert unknown.status_code == 404
    bad = await api.client.post(f"/api/v1/conversations/{cid}/handoff", headers=HEADERS,
                                json={"agent_id": "", "minutes": 0})
    assert bad.status_code == 422
    anonymous = await api.client.post(f"/api/v1/conversations/{cid}/release")
    assert anonymous.status_code == 401
