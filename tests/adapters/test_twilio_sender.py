"""TwilioMessageSender over real loopback sockets against the fake Twilio server, plus the
offline adapters (console sender, echo responder)."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from adapters.console import ConsoleMessageSender
from adapters.echo import EchoResponder
from adapters.http_pool.transport import AiohttpPool
from adapters.twilio import TwilioMessageSender
from application.errors import DeliveryFailed, DeliveryUncertain
from application.ports.message_sender import OutboundEnvelope
from domain.conversation import Conversation, ConversationStatus
from domain.message import DeliveryStatus, Direction, Message, MessageType
from tests.fakes.fake_twilio import FakeTwilioServer, fake_twilio_server

SID_SHAPE = re.compile(r"^SM[0-9a-f]{32}$")
FROM = "whatsapp:+14155238886"
TO = "whatsapp:+5511999990000"


def envelope(body: str = "hello there", media: tuple[str, ...] = ()) -> OutboundEnvelope:
    return OutboundEnvelope(
        owner_id="owner-1", from_address=FROM, to_address=TO, body=body, media_urls=media
    )


@pytest.fixture(scope="module")
def server() -> Iterator[FakeTwilioServer]:
    with fake_twilio_server() as twilio:
        yield twilio


@pytest.fixture
def twilio(server: FakeTwilioServer) -> FakeTwilioServer:
    server.reset()
    return server


@pytest.fixture(params=["httpcore", "aiohttp"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """Every sender test runs on httpx's own pool and on the aiohttp pool the app uses."""
    transport = AiohttpPool(max_connections=20) if request.param == "aiohttp" else None
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=0.5),
                                 transport=transport) as c:
        yield c


def make_sender(
    twilio: FakeTwilioServer,
    client: httpx.AsyncClient,
    *,
    auth_token: str | None = None,
    base_url: str | None = None,
    status_callback_url: str | None = None,
) -> TwilioMessageSender:
    return TwilioMessageSender(
        account_sid=twilio.account_sid,
        auth_token=auth_token or twilio.auth_token,
        client=client,
        base_url=base_url or twilio.base_url,
        status_callback_url=status_callback_url,
    )


def assert_no_secret(exc: BaseException, secret: str) -> None:
    assert secret not in str(exc)
    assert secret not in repr(exc)
    assert all(secret not in str(arg) for arg in exc.args)


# -- TwilioMessageSender -------------------------------------------------------------------


async def test_send_is_recorded_and_returns_fakes_sid(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    receipt = await make_sender(twilio, client).send(envelope("hello there"))

    [recorded] = twilio.sent
    assert recorded.account_sid == twilio.account_sid
    assert recorded.auth_username == twilio.account_sid
    assert (recorded.to, recorded.from_, recorded.body) == (TO, FROM, "hello there")
    assert recorded.media_urls == ()
    assert recorded.status_callback is None
    assert receipt.provider_sid == recorded.sid
    assert SID_SHAPE.match(receipt.provider_sid)
    assert receipt.status is DeliveryStatus.QUEUED


async def test_media_urls_repeat_and_status_callback_is_sent(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    sender = make_sender(twilio, client, status_callback_url="https://example.test/status")
    media = ("https://example.test/a.jpg", "https://example.test/b.png")

    await sender.send(envelope("", media=media))

    [recorded] = twilio.sent
    assert recorded.media_urls == media
    assert [v for k, v in recorded.form if k == "MediaUrl"] == list(media)
    assert recorded.status_callback == "https://example.test/status"


async def test_known_status_is_mapped_and_unknown_falls_back_to_queued(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    sender = make_sender(twilio, client)
    twilio.reply_status = "accepted"
    assert (await sender.send(envelope())).status is DeliveryStatus.ACCEPTED
    twilio.reply_status = "some-future-status"
    assert (await sender.send(envelope())).status is DeliveryStatus.QUEUED


async def test_wrong_auth_token_is_permanent_20003_without_leaking_token(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    wrong = "wrong-token-that-must-stay-secret"
    with pytest.raises(DeliveryFailed) as info:
        await make_sender(twilio, client, auth_token=wrong).send(envelope())

    assert info.value.retryable is False
    assert info.value.error_code == "20003"
    assert twilio.sent == []
    assert_no_secret(info.value, wrong)


async def test_429_is_retryable_then_retry_succeeds(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    twilio.fail_next(status=429, code=20429, times=2, message="Too Many Requests")
    sender = make_sender(twilio, client)

    for _ in range(2):
        with pytest.raises(DeliveryFailed) as info:
            await sender.send(envelope())
        assert info.value.retryable is True
        assert info.value.error_code == "20429"
        assert_no_secret(info.value, twilio.auth_token)

    receipt = await sender.send(envelope())
    assert [r.status_code for r in twilio.attempts] == [429, 429, 201]
    assert [r.sid for r in twilio.sent] == [receipt.provider_sid]


async def test_500_is_retryable(twilio: FakeTwilioServer, client: httpx.AsyncClient) -> None:
    twilio.fail_next(status=500, code=20500, message="Internal Server Error")
    with pytest.raises(DeliveryFailed) as info:
        await make_sender(twilio, client).send(envelope())
    assert info.value.retryable is True
    assert info.value.error_code == "20500"


async def test_5xx_without_twilio_json_is_retryable_without_code(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    twilio.fail_next(status=503, code=None, message="<html>Service Unavailable</html>")
    with pytest.raises(DeliveryFailed) as info:
        await make_sender(twilio, client).send(envelope())
    assert info.value.retryable is True
    assert info.value.error_code is None


async def test_400_is_permanent_with_twilios_code(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    twilio.fail_next(status=400, code=21211, message="The 'To' number is not a valid phone number.")
    with pytest.raises(DeliveryFailed) as info:
        await make_sender(twilio, client).send(envelope())
    assert info.value.retryable is False
    assert info.value.error_code == "21211"
    assert "21211" in str(info.value)
    assert_no_secret(info.value, twilio.auth_token)


async def test_error_text_echoing_the_token_is_redacted(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    twilio.fail_next(status=400, code=20003, message=f"bad credentials {twilio.auth_token}")
    with pytest.raises(DeliveryFailed) as info:
        await make_sender(twilio, client).send(envelope())
    assert "bad credentials ***" in str(info.value)
    assert_no_secret(info.value, twilio.auth_token)


async def test_fake_validation_error_maps_to_permanent(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    # Empty body and no media: the fake refuses like Twilio does (21602).
    with pytest.raises(DeliveryFailed) as info:
        await make_sender(twilio, client).send(envelope(""))
    assert info.value.retryable is False
    assert info.value.error_code == "21602"


async def test_connection_refused_is_retryable(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    # A port that was just free and is now closed: nothing listens, the connect is refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = make_sender(twilio, client, base_url=f"http://127.0.0.1:{port}")

    with pytest.raises(DeliveryFailed) as info:
        await sender.send(envelope())
    assert info.value.retryable is True
    assert info.value.error_code is None
    assert_no_secret(info.value, twilio.auth_token)


async def test_response_slower_than_read_timeout_is_uncertain(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    twilio.delay_seconds = 2.0  # the client's read timeout is 0.5 s
    with pytest.raises(DeliveryUncertain) as info:
        await make_sender(twilio, client).send(envelope("slow"))

    # Exactly why it is uncertain: the provider took the message, the answer was lost.
    assert [r.body for r in twilio.sent] == ["slow"]
    assert_no_secret(info.value, twilio.auth_token)


async def test_success_without_a_sid_is_uncertain(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    # A 200 we cannot parse: Twilio may have taken it, so no retry may follow.
    twilio.fail_next(status=200, code=None, message="OK")
    with pytest.raises(DeliveryUncertain):
        await make_sender(twilio, client).send(envelope())


async def test_repr_hides_token(twilio: FakeTwilioServer, client: httpx.AsyncClient) -> None:
    assert twilio.auth_token not in repr(make_sender(twilio, client))


# -- the fake itself -----------------------------------------------------------------------


async def test_fake_rejects_sid_mismatch_and_missing_fields(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    url = f"{twilio.base_url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    auth = (twilio.account_sid, twilio.auth_token)

    other = url.replace(twilio.account_sid, "AC" + "f" * 32)
    mismatch = await client.post(other, data={"To": TO, "From": FROM, "Body": "x"}, auth=auth)
    no_to = await client.post(url, data={"From": FROM, "Body": "x"}, auth=auth)
    no_from = await client.post(url, data={"To": TO, "Body": "x"}, auth=auth)

    assert (mismatch.status_code, mismatch.json()["code"]) == (401, 20003)
    assert (no_to.status_code, no_to.json()["code"]) == (400, 21604)
    assert (no_from.status_code, no_from.json()["code"]) == (400, 21603)
    assert twilio.sent == []
    assert len(twilio.attempts) == 3


async def test_fake_answers_a_twilio_message_resource(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    url = f"{twilio.base_url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    response = await client.post(
        url,
        data={"To": TO, "From": FROM, "Body": "hi", "MediaUrl": ["https://e.test/1.jpg"]},
        auth=(twilio.account_sid, twilio.auth_token),
    )
    assert response.status_code == 201
    resource = response.json()
    assert SID_SHAPE.match(resource["sid"])
    assert resource["status"] == "queued"
    assert (resource["to"], resource["from"], resource["body"]) == (TO, FROM, "hi")
    assert resource["num_media"] == "1"
    assert resource["direction"] == "outbound-api"
    assert resource["error_code"] is None
    assert twilio.wait_for_sends(1, timeout=1)[0].sid == resource["sid"]


def test_wait_for_sends_times_out(twilio: FakeTwilioServer) -> None:
    with pytest.raises(TimeoutError):
        twilio.wait_for_sends(1, timeout=0.1)


def test_fake_stops_and_frees_its_port() -> None:
    with FakeTwilioServer() as fake:
        host_port = fake.base_url.removeprefix("http://").split(":")
        assert host_port[0] == "127.0.0.1"
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{fake.base_url}/2010-04-01/Accounts/x/Messages.json", timeout=2)


# -- ConsoleMessageSender ------------------------------------------------------------------


async def test_console_sender_logs_and_returns_sent_receipt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = ConsoleMessageSender(keep=2)
    with caplog.at_level(logging.INFO, logger="adapters.console"):
        first = await sender.send(envelope("first body"))
        second = await sender.send(envelope("second body"))
        await sender.send(envelope("third body"))

    assert SID_SHAPE.match(first.provider_sid)
    assert first.provider_sid != second.provider_sid
    assert first.status is DeliveryStatus.SENT
    messages = [r.getMessage() for r in caplog.records if r.name == "adapters.console"]
    assert any("first body" in m and TO in m and FROM in m for m in messages)
    assert [e.body for e in sender.sent] == ["second body", "third body"]


# -- EchoResponder -------------------------------------------------------------------------


def _message(body: str, metadata: dict[str, object] | None = None) -> Message:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    return Message(
        id="m1",
        conversation_id="c1",
        owner_id="owner-1",
        direction=Direction.INBOUND,
        type=MessageType.MEDIA if metadata else MessageType.TEXT,
        body=body,
        from_address=TO,
        to_address=FROM,
        status=DeliveryStatus.RECEIVED,
        created_at=now,
        updated_at=now,
        metadata=dict(metadata or {}),
    )


def _conversation() -> Conversation:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    return Conversation(
        id="c1",
        owner_id="owner-1",
        contact=TO,
        channel="whatsapp",
        status=ConversationStatus.OPEN,
        created_at=now,
        updated_at=now,
        last_message_at=now,
    )


async def test_echo_repeats_stripped_text() -> None:
    message = _message("  hi there \n")
    assert await EchoResponder().reply(_conversation(), message, [message]) == "Echo: hi there"


async def test_echo_media_only() -> None:
    message = _message(
        "  ", {"media": [{"url": "https://e.test/1.jpg", "content_type": "image/jpeg"}]}
    )
    assert await EchoResponder().reply(_conversation(), message, [message]) == "Echo: [media]"


async def test_echo_text_with_media_prefers_text() -> None:
    message = _message("look", {"media": [{"url": "https://e.test/1.jpg"}]})
    assert await EchoResponder().reply(_conversation(), message, [message]) == "Echo: look"
