"""The WhatsApp channel at the edge, over a real socket on SQLite and on PostgreSQL: typed
inbound kinds stored and shown by the read API; free text to a contact who never wrote
refused with WINDOW_CLOSED."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.edge.server import INBOUND, EdgeServer, inbound

pytestmark = pytest.mark.e2e


@pytest.fixture
def client() -> Any:
    with httpx.Client(timeout=10) as c:
        yield c


def _find(edge_server: EdgeServer, client: httpx.Client, sid: str) -> dict[str, Any]:
    cursor = None
    while True:
        page = client.get(edge_server.url("/api/v1/conversations"), headers=edge_server.auth(),
                          params={"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
        for conversation in page["items"]:
            messages = client.get(
                edge_server.url(f"/api/v1/conversations/{conversation['id']}/messages"),
                headers=edge_server.auth(), params={"limit": 200}).json()["items"]
            for message in messages:
                if message["provider_sid"] == sid:
                    return dict(message)
        cursor = page["next_cursor"]
        if cursor is None:
            raise AssertionError(f"message {sid} not listed")


def test_location_and_button_replies_are_stored_typed_and_shown(
    edge_server: EdgeServer, client: httpx.Client
) -> None:
    where, button = "SM" + uuid.uuid4().hex, "SM" + uuid.uuid4().hex
    assert edge_server.signed_form(client, INBOUND, inbound(
        where, "", Latitude="48.8584", Longitude="2.2945", Address="Champ de Mars",
        Label="Tower")).status_code == 200
    assert edge_server.signed_form(client, INBOUND, inbound(
        button, "Tomorrow", ButtonPayload="slot-2", ButtonText="Tomorrow")).status_code == 200
    shown = _find(edge_server, client, where)
    assert shown["type"] == "location"
    assert shown["content"]["location"] == {"latitude": 48.8584, "longitude": 2.2945,
                                            "address": "Champ de Mars", "label": "Tower"}
    pressed = _find(edge_server, client, button)
    assert pressed["type"] == "interactive"
    assert pressed["content"] == {"kind": "button", "location": None, "media": [],
                                  "button": {"payload": "slot-2", "text": "Tomorrow"}}


def test_free_text_to_a_contact_who_never_wrote_is_window_closed(
    edge_server: EdgeServer, client: httpx.Client
) -> None:
    before = edge_server.rows()
    response = client.post(edge_server.url("/api/v1/messages"), headers=edge_server.auth(),
                           json={"to": "whatsapp:+5511900001111", "body": "hello?"})
    assert response.status_code == 409 and response.json()["code"] == "WINDOW_CLOSED"
    assert edge_server.rows()[0] == before[0]
