"""The WhatsApp address value object: ``whatsapp:+<E.164>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import InvalidWhatsAppAddress

PREFIX = "whatsapp:"
# E.164: a leading +, a non-zero country digit, at most 15 digits in all.
_E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    e164: str

    def __post_init__(self) -> None:
        if not isinstance(self.e164, str) or not _E164_RE.match(self.e164):
            raise InvalidWhatsAppAddress(f"not an E.164 phone number: {self.e164!r}")

    def __str__(self) -> str:
        return self.e164


@dataclass(frozen=True, slots=True)
class WhatsAppAddress:
    """A WhatsApp endpoint as Twilio writes it. ``str()`` gives the canonical form."""

    phone: PhoneNumber

    @classmethod
    def parse(cls, text: str) -> WhatsAppAddress:
        """Parse ``whatsapp:+E164``; the prefix is case-insensitive, spaces around are ignored.

        A bare ``+E164`` is refused: Twilio's WhatsApp webhooks always carry the prefix, and
        accepting bare numbers would let SMS traffic masquerade as WhatsApp.
        """
        if not isinstance(text, str):
            raise InvalidWhatsAppAddress(f"not a WhatsApp address: {text!r}")
        stripped = text.strip()
        if not stripped.lower().startswith(PREFIX):
            raise InvalidWhatsAppAddress(f"not a WhatsApp address (missing 'whatsapp:'): {text!r}")
        return cls(PhoneNumber(stripped[len(PREFIX):]))

    @classmethod
    def from_phone(cls, e164: str) -> WhatsAppAddress:
        return cls(PhoneNumber(e164))

    def __str__(self) -> str:
        return f"{PREFIX}{self.phone.e164}"
