"""Errors raised through ports. Adapters translate driver and SDK errors into these."""

from __future__ import annotations

from domain.delivery_errors import Outcome


class ApplicationError(Exception):
    code = "APPLICATION_ERROR"


class NotFound(ApplicationError):
    code = "NOT_FOUND"


class ConcurrencyError(ApplicationError):
    """An update carried a stale version; nothing was written."""

    code = "CONCURRENCY_CONFLICT"


class InvalidQuery(ApplicationError):
    """A filter named an unknown column or operator; raised before any SQL is built."""

    code = "INVALID_QUERY"


class StorageUnavailable(ApplicationError):
    """The database could not be reached or failed; the caller may retry later."""

    code = "STORAGE_UNAVAILABLE"


class QueueUnavailable(ApplicationError):
    code = "QUEUE_UNAVAILABLE"


class PayloadTooLarge(ApplicationError):
    code = "PAYLOAD_TOO_LARGE"


class DeliveryFailed(ApplicationError):
    """The provider refused or could not take the message.

    ``retryable`` is true only when the provider certainly did not accept it (a 429/5xx
    answer, a connection that never opened), so a retry cannot produce a second message.

    ``outcome`` says what the failure means for the contact and the account (see
    ``domain.delivery_errors``); ``retry_after`` is the provider's ``Retry-After`` in
    seconds, which the worker waits at least before the job's next attempt.
    """

    code = "DELIVERY_FAILED"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        error_code: str | None = None,
        outcome: Outcome | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.error_code = error_code
        self.outcome = outcome or (Outcome.RETRY_LATER if retryable else Outcome.PERMANENT)
        self.retry_after = retry_after


def retry_delay_hint(exc: BaseException) -> float | None:
    """The least delay an error asks before the job's next attempt (None: no wish)."""
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) and value >= 0 else None


class ContactBlocked(ApplicationError):
    """The contact opted out or cannot be reached; nothing is sent until they write."""

    code = "CONTACT_BLOCKED"


class WindowClosed(ApplicationError):
    """A free-form message to a contact who has not written for 24 hours (no template)."""

    code = "WINDOW_CLOSED"


class DeliveryUncertain(ApplicationError):
    """The request may have reached the provider (timeout after sending); never retried."""

    code = "DELIVERY_UNCERTAIN"


class PermanentJobError(ApplicationError):
    """A job that can never succeed (its message is gone): dead-lettered without retries."""

    code = "PERMANENT_JOB_ERROR"


class UnauthorizedOwner(ApplicationError):
    code = "UNKNOWN_OWNER"


class SchemaBehind(StorageUnavailable):
    """The database's schema is older than this code expects: run the migrations."""

    code = "SCHEMA_BEHIND"
