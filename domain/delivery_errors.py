"""What a Twilio error means for the message and for the next send: one table.

Twilio reports an error as a numeric code, in a REST answer to a send or in a status
callback (``ErrorCode``). Each code known here maps to an ``Outcome`` and a short meaning
stored beside the code; an unknown code falls back on the HTTP status of the answer (429
and 5xx: retry later; 401: bad credentials; any other 4xx: permanent).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.StrEnum):
    PERMANENT = "permanent"  # this message can never be sent as it is
    RETRY_LATER = "retry_later"  # Twilio did not take it; the same send may succeed later
    CONTACT_UNREACHABLE = "contact_unreachable"  # the number cannot receive WhatsApp
    OPTED_OUT = "opted_out"  # the contact asked not to be messaged (or blocked us)
    BAD_CREDENTIALS = "bad_credentials"  # the account's sid/token were refused
    WINDOW_CLOSED = "window_closed"  # free-form text outside the 24-hour window

    @property
    def retryable(self) -> bool:
        return self is Outcome.RETRY_LATER

    @property
    def blocks_contact(self) -> bool:
        """Sending to this contact again is pointless until they write."""
        return self in (Outcome.CONTACT_UNREACHABLE, Outcome.OPTED_OUT)


@dataclass(frozen=True, slots=True)
class ErrorMeaning:
    code: str | None
    outcome: Outcome
    meaning: str


_CODES: dict[int, tuple[Outcome, str]] = {
    20003: (Outcome.BAD_CREDENTIALS, "authentication failed"),
    20429: (Outcome.RETRY_LATER, "too many requests"),
    20500: (Outcome.RETRY_LATER, "Twilio internal error"),
    20503: (Outcome.RETRY_LATER, "Twilio service unavailable"),
    21211: (Outcome.CONTACT_UNREACHABLE, "invalid 'To' number"),
    21408: (Outcome.PERMANENT, "sending to this region is not enabled"),
    21602: (Outcome.PERMANENT, "message body is required"),
    21603: (Outcome.PERMANENT, "'From' number is required"),
    21604: (Outcome.PERMANENT, "'To' number is required"),
    21606: (Outcome.PERMANENT, "'From' number cannot send this message"),
    21610: (Outcome.OPTED_OUT, "the contact unsubscribed (STOP)"),
    21612: (Outcome.CONTACT_UNREACHABLE, "cannot route between these numbers"),
    21614: (Outcome.CONTACT_UNREACHABLE, "'To' is not a valid mobile number"),
    21617: (Outcome.PERMANENT, "body exceeds 1600 characters"),
    21655: (Outcome.PERMANENT, "invalid ContentSid"),
    21656: (Outcome.PERMANENT, "invalid ContentVariables"),
    30003: (Outcome.CONTACT_UNREACHABLE, "unreachable destination handset"),
    30004: (Outcome.OPTED_OUT, "message blocked by the recipient"),
    30005: (Outcome.CONTACT_UNREACHABLE, "unknown destination handset"),
    30006: (Outcome.CONTACT_UNREACHABLE, "landline or unreachable carrier"),
    30007: (Outcome.PERMANENT, "message filtered by the carrier"),
    30008: (Outcome.PERMANENT, "unknown delivery error"),
    63003: (Outcome.CONTACT_UNREACHABLE, "the channel cannot reach this address"),
    63016: (Outcome.WINDOW_CLOSED, "free-form message outside the 24-hour window"),
    63018: (Outcome.RETRY_LATER, "rate limit of the WhatsApp channel exceeded"),
    63024: (Outcome.CONTACT_UNREACHABLE, "invalid message recipient"),
    63027: (Outcome.PERMANENT, "template does not exist for this language"),
    63030: (Outcome.PERMANENT, "unsupported parameter for this message type"),
    63038: (Outcome.RETRY_LATER, "daily message limit of the account reached"),
    63049: (Outcome.PERMANENT, "Meta chose not to deliver this marketing message"),
}


def explain(code: object, http_status: int | None = None) -> ErrorMeaning:
    """The outcome and meaning of a Twilio error code (None or unknown: by HTTP status)."""
    text = str(code).strip() if code is not None else ""
    known = _CODES.get(int(text)) if text.isdigit() else None
    if known is not None:
        return ErrorMeaning(text, known[0], known[1])
    return ErrorMeaning(text or None, *_by_status(http_status))


def _by_status(status: int | None) -> tuple[Outcome, str]:
    if status is None:
        return Outcome.PERMANENT, "unknown error"
    if status == 429:
        return Outcome.RETRY_LATER, "too many requests"
    if status >= 500:
        return Outcome.RETRY_LATER, f"provider error (HTTP {status})"
    if status == 401:
        return Outcome.BAD_CREDENTIALS, "authentication failed"
    return Outcome.PERMANENT, f"refused (HTTP {status})"


def blocking_codes() -> frozenset[str]:
    """Codes after which a contact is not messaged again until they write."""
    return frozenset(str(code) for code, (outcome, _) in _CODES.items()
                     if outcome.blocks_contact)
