"""Twilio's error answers, over real sockets: each code reaches the caller as its outcome,
``Retry-After`` as a delay, bad credentials as one alert and no retry; templates go out as
ContentSid + ContentVariables."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from application.errors import DeliveryFailed
from application.ports.message_sender import OutboundEnvelope
from domain.delivery_errors import Outcome, explain
from tests.adapters.test_twilio_sender import FROM, TO, client, envelope, make_sender
from tests.fakes.fake_twilio import DEFAULT_TEMPLATE_SID, FakeTwilioServer, fake_twilio_server

__all__ = ["client"]  # the fixture, shared with the sender's tests


@pytest.fixture(scope="module")
def server() -> Iterator[FakeTwilioServer]:
    with fake_twilio_server() as twilio:
        yield twilio


@pytest.fixture
def twilio(server: FakeTwilioServer) -> FakeTwilioServer:
    server.reset()
    return server


@pytest.mark.parametrize(("status", "code", "outcome", "retryable"), [
    (400, 21610, Outcome.OPTED_OUT, False),
    (400, 21211, Outcome.CONTACT_UNREACHABLE, False),
    (400, 63016, Outcome.WINDOW_CLOSED, False),
    (400, 21617, Outcome.PERMANENT, False),
    (429, 20429, Outcome.RETRY_LATER, True),
    (503, 20503, Outcome.RETRY_LATER, True),
    (400, 99999, Outcome.PERMANENT, False),  # unknown code: by HTTP status
    (502, 99999, Outcome.RETRY_LATER, True),
])
async def test_each_error_code_reaches_the_caller_as_its_outcome(
    twilio: FakeTwilioServer, client: httpx.AsyncClient,
    status: int, code: int, outcome: Outcome, retryable: bool,
) -> None:
    twilio.fail_next(status=status, code=code)
    with pytest.raises(DeliveryFailed) as info:
        await make_sender(twilio, client).send(envelope())
    assert info.value.outcome is outcome
    assert info.value.retryable is retryable
    assert info.value.error_code == str(code)
    assert twilio.sent == []


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_in_seconds_is_handed_on(
    twilio: FakeTwilioServer, client: httpx.AsyncClient, status: int
) -> None:
    twilio.fail_next(status=status, code=20429 if status == 429 else 20503, retry_after="7")
    with pytest.raises(DeliveryFailed) as info:
        await make_sender(twilio, client).send(envelope())
    assert info.value.retry_after == 7.0


async def test_retry_after_as_a_date_and_absurd_values(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    twilio.fail_next(status=429, code=20429, retry_after=when)
    twilio.fail_next(status=429, code=20429, retry_after="86400000")
    twilio.fail_next(status=429, code=20429, retry_after="soon")
    sender = make_sender(twilio, client)
    delays = []
    for _ in range(3):
        with pytest.raises(DeliveryFailed) as info:
            await sender.send(envelope())
        delays.append(info.value.retry_after)
    assert delays[0] is not None and 20 <= delays[0] <= 30
    assert delays[1] == 3600.0  # capped: a job must come back within the hour
    assert delays[2] is None


async def test_a_permanent_refusal_carries_no_retry_after(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    twilio.fail_next(status=400, code=21211, retry_after="5")
    with pytest.raises(DeliveryFailed) as info:
        await make_sender(twilio, client).send(envelope())
    assert info.value.retry_after is None


async def test_bad_credentials_fail_for_good_with_one_alert(
    twilio: FakeTwilioServer, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.twilio")
    with pytest.raises(DeliveryFailed) as info:
        await make_sender(twilio, client, auth_token="not-the-token").send(envelope())
    assert info.value.outcome is Outcome.BAD_CREDENTIALS and not info.value.retryable
    [record] = [r for r in caplog.records if r.name == "adapters.twilio"]
    assert record.levelno == logging.ERROR
    assert record.alert is True  # type: ignore[attr-defined]
    assert "not-the-token" not in record.getMessage()


async def test_a_template_goes_out_as_content_sid_and_variables(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    template = OutboundEnvelope(
        owner_id="o", from_address=FROM, to_address=TO, body="ignored",
        content_sid=DEFAULT_TEMPLATE_SID, content_variables=(("1", "Ana"), ("2", "3pm")),
    )
    await make_sender(twilio, client).send(template)
    [sent] = twilio.sent
    assert sent.content_sid == DEFAULT_TEMPLATE_SID and sent.body is None
    assert json.loads(sent.content_variables or "") == {"1": "Ana", "2": "3pm"}


async def test_an_unknown_template_is_a_permanent_failure(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    unknown = OutboundEnvelope(owner_id="o", from_address=FROM, to_address=TO, body="",
                               content_sid="HX" + "0" * 32)
    with pytest.raises(DeliveryFailed) as info:
        await make_sender(twilio, client).send(unknown)
    assert info.value.error_code == "21655" and not info.value.retryable


async def test_the_fake_refuses_a_body_over_1600_characters_like_twilio(
    twilio: FakeTwilioServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(DeliveryFailed) as info:
        await make_sender(twilio, client).send(envelope("x" * 1601))
    assert info.value.error_code == "21617"


def test_status_callback_codes_have_meanings() -> None:
    assert explain("30006").outcome is Outcome.CONTACT_UNREACHABLE
    assert explain("63016").meaning.startswith("free-form")
    assert explain(None, 401).outcome is Outcome.BAD_CREDENTIALS
    assert explain("abc", None).outcome is Outcome.PERMANENT
