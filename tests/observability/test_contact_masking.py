"""Contacts' phone numbers and e-mail addresses are masked in logs outside development."""

from __future__ import annotations

import logging

import pytest
import structlog

from bootstrap.contacts import mask_contacts
from bootstrap.redaction import Redactor
from tests.conftest import MakeSettings
from tests.observability.conftest import LogCapture

PHONE = "whatsapp:+5511977774567"
EMAIL = "joana.silva@example.com"
WA_ID = "5511977774567"
CLEAR = ["5511977774567", "joana.silva", "977774567"]


def _emit(logger_name: str) -> None:
    log = logging.getLogger(logger_name)
    log.warning("reply to %s failed", PHONE)
    log.warning(f"contact wrote from {EMAIL}")
    log.info("form From=whatsapp%3A%2B5511977774567&Body=hi")
    structlog.get_logger(logger_name).info("stored", to=PHONE, wa_id=WA_ID,
                                           nested={"email": EMAIL, "from": PHONE},
                                           contacts=[PHONE, EMAIL])
    try:
        raise RuntimeError(f"Twilio refused {PHONE} ({EMAIL})")
    except RuntimeError:
        log.exception("send failed")


@pytest.mark.parametrize("environment", ["test", "staging"])
@pytest.mark.parametrize("log_format", ["json", "console"])
def test_no_contact_reaches_the_output_outside_development(
    make_settings: MakeSettings, logs: LogCapture, environment: str, log_format: str
) -> None:
    logs.configure(make_settings(api_environment=environment, log_format=log_format))
    _emit("application.use_cases")
    output = logs.text
    assert [clear for clear in CLEAR if clear in output] == [], output
    assert "whatsapp:+*********4567" in output and "j***@example.com" in output
    assert "%2B*********4567" in output
    assert "Traceback" in output and "RuntimeError: Twilio refused" in output


def test_development_keeps_contacts_readable(
    make_settings: MakeSettings, logs: LogCapture
) -> None:
    logs.configure(make_settings(api_environment="development", log_format="json"))
    _emit("application.use_cases")
    assert PHONE in logs.text and EMAIL in logs.text and WA_ID in logs.text


@pytest.mark.parametrize("text", [
    "message 01J9ZK3Y7M8N9P0Q1R2S3T4V5W stored",            # a ULID
    "MessageSid SM0123456789abcdef0123456789abcdef",          # a Twilio sid
    "at 2026-11-30T21:50:11.123456+00:00 epoch 1732999999123",  # timestamps
    "charged 12345678.90 BRL, +1500.00 credit",              # amounts
    "job 4815162342 attempt 3 of 5",                          # ids
    "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
])
def test_numbers_that_are_not_phone_numbers_are_left_alone(text: str) -> None:
    assert Redactor(mask_contacts=True).scrub(text) == text


@pytest.mark.parametrize(("text", "masked"), [
    ("to whatsapp:+14155234567.", "to whatsapp:+*******4567."),
    ("call +1 415-523-4567 now", "call +*******4567 now"),
    ("+5511977776666,+5511977775555", "+*********6666,+*********5555"),
    ("mail a@b.co or John.Doe+tag@mail.example.org", "mail a***@b.co or J***@mail.example.org"),
    # URL-encoded '+', with no literal '+' or '@' anywhere in the text.
    ("From=whatsapp%3A%2B14155234567&Body=hi", "From=whatsapp%3A%2B*******4567&Body=hi"),
    ("from=whatsapp%3a%2b14155234567", "from=whatsapp%3a%2b*******4567"),
])
def test_numbers_and_addresses_are_masked_keeping_the_last_digits(text: str, masked: str
                                                                   ) -> None:
    assert mask_contacts(text) == masked


def test_a_structured_contact_field_is_masked_even_without_a_plus() -> None:
    event = Redactor(mask_contacts=True)(None, "info", {"event": "x", "WaId": WA_ID,
                                                         "count": 12345678})
    assert event == {"event": "x", "WaId": "*********4567", "count": 12345678}
