"""The redactor screens a line's texts at once: the result must be what scrubbing each value
gives, for lines with and without secrets, and a plain line must skip the per-value work."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Any

import pytest

from bootstrap import redaction
from bootstrap.redaction import MASK, Redactor, register_secret

KNOWN = "wibble-wobble-42"  # no screen word in it: only the known-value check sees it
RUNTIME = "Zq8rT2mW9xLp4VbN7cYh"  # no screen word in it: only the runtime check sees it

PLAIN: dict[str, Any] = {
    "event": '127.0.0.1:5555 - "POST /channels/twilio/v1/webhooks/inbound HTTP/1.1" 200',
    "request_id": "636f8517d9fe40a8b1e2168eb53cd880", "correlation_id": "SM" + "a" * 32,
    "owner_id": "AC" + "0" * 32, "inbound": "stored", "reply_queued": True, "level": "info",
    "status_code": 200, "duration_ms": 1.23, "note": None,
}


class Colour(enum.StrEnum):
    RED = "red"


LINES: list[dict[str, Any]] = [
    PLAIN,
    {**PLAIN, "detail": f"sent with {KNOWN} inside"},
    {**PLAIN, "detail": f"owner {RUNTIME} opened"},
    {**PLAIN, "detail": "Authorization: Bearer abc.def"},
    {**PLAIN, "detail": "postgresql://app:pa55@db/app"},
    {**PLAIN, "auth_token": "looks-harmless"},
    {**PLAIN, "Authorization": ""},
    {**PLAIN, "from": "whatsapp:+5511987654321"},
    {**PLAIN, "wa_id": "5511987654321"},
    {**PLAIN, "detail": "write to j.doe@example.com"},
    {**PLAIN, "body": b"bytes with " + KNOWN.encode()},
    {**PLAIN, "extra": {"token": "t0k", "ok": "fine"}},
    {**PLAIN, "items": ["fine", f"and {KNOWN}"]},
    {**PLAIN, "colour": Colour.RED},
    {**PLAIN, "object": object()},
    # Only across the separator would these look like a secret: no value holds one.
    {**PLAIN, "a": "bear", "b": "er", "c": "to", "d": "ken"},
    {**PLAIN, "a": KNOWN[:10], "b": KNOWN[10:]},
    {**PLAIN, "a": "%", "b": "2B5511987654321"},
]


@pytest.fixture
def learnt() -> Iterator[None]:
    register_secret(RUNTIME)
    yield
    redaction._RUNTIME_SECRETS.discard(RUNTIME)


def per_value(redactor: Redactor, line: dict[str, Any]) -> dict[str, Any]:
    return {key: redactor._value(key, value) for key, value in line.items()}


def comparable(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float | list | dict) or v is None else repr(v)
            for k, v in line.items()}


@pytest.mark.usefixtures("learnt")
@pytest.mark.parametrize("mask_contacts", [False, True])
@pytest.mark.parametrize("line", LINES, ids=range(len(LINES)))
def test_a_line_comes_out_as_scrubbing_each_value_gives(
    line: dict[str, Any], mask_contacts: bool
) -> None:
    redactor = Redactor([KNOWN], mask_contacts=mask_contacts)
    assert comparable(redactor(None, "info", dict(line))) == comparable(
        per_value(redactor, line))


@pytest.mark.usefixtures("learnt")
def test_secrets_are_masked_whichever_path_a_line_takes() -> None:
    redactor = Redactor([KNOWN], mask_contacts=True)
    for line in LINES[1:5]:
        assert MASK in redactor(None, "info", dict(line))["detail"]
    assert redactor(None, "info", {**PLAIN, "auth_token": "x"})["auth_token"] == MASK
    assert "987654321" not in redactor(None, "info", dict(LINES[7]))["from"]


@pytest.mark.usefixtures("learnt")
@pytest.mark.parametrize("mask_contacts", [False, True])
def test_a_plain_line_is_screened_once_not_value_by_value(
    monkeypatch: pytest.MonkeyPatch, mask_contacts: bool
) -> None:
    redactor = Redactor([KNOWN], mask_contacts=mask_contacts)

    def refuse(key: object, value: Any) -> Any:
        raise AssertionError(f"{key!r} was scrubbed on its own")

    monkeypatch.setattr(redactor, "_value", refuse)
    assert redactor(None, "info", dict(PLAIN)) == PLAIN
    with pytest.raises(AssertionError):  # and a line that needs it still goes value by value
        redactor(None, "info", {**PLAIN, "detail": KNOWN})


def test_the_screen_words_are_what_the_patterns_need() -> None:
    # Each pattern can only match text holding one of the screen's words.
    samples = ["Bearer x", "basic y", "eyJab.eyJcd.sig", "sk-" + "a" * 16, "http://u:p@h",
               "api_key=1", "token: 2", "secret=3", "password=4", "pwd=5", "authorization=6"]
    for sample in samples:
        assert any(p.search(sample) for p, _ in redaction._PATTERNS), sample
        assert redaction._screened(sample.casefold()), sample
    assert not redaction._screened(PLAIN["event"].casefold())
