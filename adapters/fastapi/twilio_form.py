"""Reading a Twilio webhook body: bounded, strict, and each Twilio field checked by format.

Twilio posts ``application/x-www-form-urlencoded`` UTF-8; anything else is refused before
a byte is parsed. The body's size was already bounded while it was read (``limits``).
Parsing refuses what no Twilio request contains (invalid UTF-8, NUL, repeated names, too
many fields) before the signature is checked, so forged junk costs little. After the
signature, every field Twilio defines must have its documented format: its signature
concatenates ``name + value`` pairs without separators, so a captured request can be
re-cut (``MessageSid=<sid>NumMedia0``) and still verify; fixed formats make every such
cut fail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import FormData

from domain.text import MAX_BODY_CHARS

FORM_TYPE = "application/x-www-form-urlencoded"

MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")  # Twilio's Message resource SIDs
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
SERVICE_SID = re.compile(r"^(MG[0-9a-fA-F]{32})?$")
# Every status Twilio documents for a message, in either direction.
TWILIO_STATUSES = frozenset({
    "accepted", "scheduled", "canceled", "queued", "sending", "sent", "failed", "delivered",
    "undelivered", "receiving", "received", "read", "partially_delivered",
})
MAX_MEDIA = 10
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_MEDIA_FIELD = re.compile(r"^Media(Url|ContentType)([0-9]+)$")
_WHATSAPP = re.compile(r"^whatsapp:\+[1-9][0-9]{6,14}$")

# name -> (pattern, what it must be). Absent optional fields are fine; present ones match.
_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "MessageSid": (MESSAGE_SID, "SM or MM followed by 32 hex digits"),
    "SmsMessageSid": (MESSAGE_SID, "SM or MM followed by 32 hex digits"),
    "SmsSid": (MESSAGE_SID, "SM or MM followed by 32 hex digits"),
    "AccountSid": (ACCOUNT_SID, "AC followed by 32 hex digits"),
    "MessagingServiceSid": (SERVICE_SID, "empty, or MG followed by 32 hex digits"),
    "From": (_WHATSAPP, "whatsapp:+ and an E.164 number"),
    "To": (_WHATSAPP, "whatsapp:+ and an E.164 number"),
    "NumMedia": (re.compile(r"^([0-9]|10)$"), f"an integer from 0 to {MAX_MEDIA}"),
    "NumSegments": (re.compile(r"^[0-9]{1,3}$"), "an integer of at most 3 digits"),
    "ErrorCode": (re.compile(r"^[0-9]{0,10}$"), "at most 10 digits"),
    "ApiVersion": (re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), "a date YYYY-MM-DD"),
    "WaId": (re.compile(r"^[0-9]{1,15}$"), "at most 15 digits"),
    # A shared location: decimal degrees (the range is the domain's check).
    "Latitude": (re.compile(r"^-?[0-9]{1,3}(\.[0-9]{1,17})?$"), "decimal degrees"),
    "Longitude": (re.compile(r"^-?[0-9]{1,3}(\.[0-9]{1,17})?$"), "decimal degrees"),
    "MediaUrl": (re.compile(r"^https?://\S{1,2040}$"), "an http(s) URL of at most 2048 chars"),
    # A MIME type, parameters allowed ("audio/ogg; codecs=opus"); Twilio's own values.
    "MediaContentType": (re.compile(r'^[\w.+-]{1,127}/[\w.+-]{1,127}'
                                    r'(\s*;\s*[\w.+-]{1,64}=[\w.+"-]{1,64}){0,4}$'),
                         "a MIME type"),
}
_STATUS_FIELDS = ("MessageStatus", "SmsStatus")
# Free text: bounded only. Any other field is bounded by MAX_FIELD_CHARS.
_TEXT_BOUNDS = {"Body": MAX_BODY_CHARS, "ProfileName": 256, "Address": 1024, "Label": 1024,
                "ButtonPayload": 1024, "ButtonText": 1024}
MAX_FIELD_CHARS = 2048


class FormRefused(Exception):
    """The body is not a form Twilio could have sent; answered before the signature."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def media_type_of(content_type: str | None) -> tuple[str, str | None]:
    """The media type (lower case) and the charset parameter, if any."""
    media, *params = (content_type or "").split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


def check_content_type(content_type: str | None) -> None:
    media, charset = media_type_of(content_type)
    if media != FORM_TYPE or charset not in (None, "utf-8", "utf8"):
        raise FormRefused(415, "UNSUPPORTED_MEDIA_TYPE",
                          f"expected {FORM_TYPE} (UTF-8), as Twilio posts")


def parse_form(body: bytes, max_fields: int) -> FormData:
    """The posted pairs, or ``FormRefused`` (400) for anything Twilio never sends."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=max_fields)
    except UnicodeDecodeError:
        raise FormRefused(400, "INVALID_ENCODING", "the form is not valid UTF-8") from None
    except ValueError:
        raise FormRefused(400, "TOO_MANY_FIELDS",
                          f"the form has more than {max_fields} fields") from None
    seen: set[str] = set()
    for name, value in pairs:
        if not _NAME.match(name):
            raise FormRefused(400, "INVALID_FIELD_NAME", "a form field has an invalid name")
        if name in seen:
            raise FormRefused(400, "REPEATED_FIELD", f"the form repeats {name}")
        seen.add(name)
        if "\x00" in value:
            raise FormRefused(400, "INVALID_TEXT", f"{name} contains NUL")
    return FormData(dict(pairs))  # names are unique here: repeats were refused above


def format_errors(form: FormData, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every field that is missing or out of its format, as validation error items."""
    errors = [_error(name, "Field required", "missing")
              for name in required if not str(form.get(name) or "")]
    for name, raw in form.multi_items():
        value = str(raw)
        if name in required and not value:
            continue
        problem = _problem(name, value)
        if problem:
            errors.append(_error(name, problem, "format"))
    return errors


def _problem(name: str, value: str) -> str | None:
    media = _MEDIA_FIELD.match(name)
    key = media.group(1) and f"Media{media.group(1)}" if media else name
    if media and int(media.group(2)) >= MAX_MEDIA:
        return f"at most {MAX_MEDIA} media items"
    if key in _FORMATS:
        pattern, what = _FORMATS[key]
        return None if pattern.match(value) else f"must be {what}"
    if name in _STATUS_FIELDS:
        return None if value in TWILIO_STATUSES else "must be one of Twilio's message statuses"
    bound = _TEXT_BOUNDS.get(name, MAX_FIELD_CHARS)
    # No NUL (refused while parsing) and no lone surrogate (strict UTF-8 cannot carry one).
    return f"must be at most {bound} characters" if len(value) > bound else None


def _error(name: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", name], "msg": msg, "type": kind}


def media_items(form: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The (url, content type) pairs Twilio listed, in order (formats already checked)."""
    count = int(str(form.get("NumMedia") or 0))
    items = []
    for index in range(min(count, MAX_MEDIA)):
        url = str(form.get(f"MediaUrl{index}") or "")
        if url:
            items.append((url, str(form.get(f"MediaContentType{index}") or "")))
    return tuple(items)
