"""Twilio field formats: what Twilio sends passes, what it never sends does not."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData

from adapters.fastapi.twilio_form import format_errors

SID = "SM" + "0" * 32


@pytest.mark.parametrize("extra", [
    {"NumMedia": "2", "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC1/Media/ME1",
     "MediaContentType0": "image/jpeg", "MediaUrl1": "https://x.example/y",
     "MediaContentType1": "audio/ogg; codecs=opus"},
    {"MessageSid": "MM" + "a" * 32, "MessagingServiceSid": "MG" + "b" * 32},
    {"Latitude": "-23.5", "Longitude": "-46.6", "Address": "Av. Paulista"},
    {"ButtonPayload": "yes", "ReferralCtwaClid": "x" * 200, "ErrorCode": ""},
])
def test_what_twilio_sends_passes(extra: dict[str, str]) -> None:
    form = FormData({"MessageSid": SID, "From": "whatsapp:+5511999990000",
                     "To": "whatsapp:+14155238886"} | extra)
    assert format_errors(form, ("MessageSid", "From", "To")) == []


@pytest.mark.parametrize(("name", "value"), [
    ("MessageSid", "SM" + "0" * 31), ("MessageSid", "XX" + "0" * 32),
    ("MessageSid", SID + "NumMedia0"), ("AccountSid", "AC" + "g" * 32),
    ("MessagingServiceSid", "MGx"), ("NumMedia", "11"), ("NumMedia", "1.0"),
    ("MediaContentType0", "image/jpeg<script>"), ("MediaUrl12", "https://x/y"),
    ("ErrorCode", "1" * 11), ("SmsStatus", "exploded"), ("WaId", "+55"),
    ("To", "whatsapp:+0123"),
])
def test_what_twilio_never_sends_is_named(name: str, value: str) -> None:
    form = FormData({"MessageSid": SID, "From": "whatsapp:+5511999990000",
                     "To": "whatsapp:+14155238886"} | {name: value})
    assert [e["loc"] for e in format_errors(form, ("MessageSid",))] == [["body", name]]
