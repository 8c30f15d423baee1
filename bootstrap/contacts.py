"""Masks contacts' phone numbers and e-mail addresses in log text, keeping enough to tell
them apart: ``whatsapp:+*******4567``, ``j***@example.com``.

A phone number is what WhatsApp and Twilio write: ``+`` (or ``%2B`` in a URL-encoded form)
and 8 to 15 digits, optionally grouped by single spaces, dots or dashes. Bare digit runs are
left alone: ids, timestamps and amounts look the same. The ``WaId`` Twilio sends (the number
without ``+``) is masked by key, in structured fields.
"""

from __future__ import annotations

import re

_KEEP_DIGITS = 4

_PHONE = re.compile(r"((?<![\w+%])\+|%2[Bb])(\d(?:[ .\-]?\d){7,14})(?!\w)")
_EMAIL = re.compile(
    r"(?<![\w.%+\-])([A-Za-z0-9])[A-Za-z0-9._%+\-]*@((?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,})\b"
)
_BARE_NUMBER = re.compile(r"\d{8,15}")

# Structured fields whose whole value is a contact, even without the '+'.
CONTACT_KEYS = frozenset({
    "waid", "wa_id", "phone", "phone_number", "msisdn", "contact", "from", "to",
    "from_address", "to_address", "email",
})


def _digits(digits: str) -> str:
    """All but the last digits as '*'; the separators go too (they carry digits' positions)."""
    bare = re.sub(r"\D", "", digits)
    return "*" * (len(bare) - _KEEP_DIGITS) + bare[-_KEEP_DIGITS:]


def mask_contacts(text: str) -> str:
    # Each pattern needs a character most log values lack ('+' or '%2', '@'): checking for
    # it first skips the regex engine on nearly every value of every log line.
    if "+" in text or "%2" in text:
        text = _PHONE.sub(lambda m: m.group(1) + _digits(m.group(2)), text)
    if "@" in text:
        text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return text


def mask_contact_value(value: str) -> str:
    """A field that is a contact: a bare number counts too."""
    masked = mask_contacts(value)
    if masked == value and _BARE_NUMBER.fullmatch(value.strip()):
        return _digits(value.strip())
    return masked
