"""Errors raised through ports. Adapters translate driver and SDK errors into these."""

from __future__ import annotations


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
    """

    code = "DELIVERY_FAILED"

    def __init__(self, message: str, *, retryable: bool, error_code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.error_code = error_code


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
