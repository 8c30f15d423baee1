"""How an OpenAI-compatible API's answers map onto ``ResponderFailed``."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

# A bad request, key, permission, model or body: asking again gives the same answer.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 422})
# Timeout, conflict, rate limit: the same request may succeed later (5xx are too).
RETRYABLE_STATUSES = frozenset({408, 409, 429})
# A hint past this is not waited for: the job's backoff takes over (a limit reset an hour
# away must not park the contact's reply for an hour).
MAX_RETRY_AFTER_SECONDS = 300.0


def is_retryable(status: int) -> bool:
    """Statuses outside both lists (413, 402, ...) are client errors: not retried."""
    return status in RETRYABLE_STATUSES or status >= 500


def retry_after_seconds(response: httpx.Response, now: datetime | None = None) -> float | None:
    """The server's ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    milliseconds = response.headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return _bounded(float(milliseconds) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return _bounded(float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _bounded((when - (now or datetime.now(UTC))).total_seconds())


def _bounded(seconds: float) -> float | None:
    if seconds != seconds or seconds < 0:  # NaN or in the past: no hint
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)
