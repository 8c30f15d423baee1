"""psycopg2 errors as the application's, decided by SQLSTATE. Messages never carry the DSN."""

from __future__ import annotations

import psycopg2

from application.errors import ConcurrencyError, StorageUnavailable

# Deliberately generic: driver messages can carry host names and users.
UNAVAILABLE_MESSAGE = "the database is unavailable"

UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"
# Connection failures, bad login, missing database, resources, operator intervention,
# system errors, and a schema that was never migrated (undefined table/column/function).
_UNAVAILABLE_CLASSES = ("08", "28", "3D", "53", "57", "58")
_UNAVAILABLE_CODES = frozenset({"42P01", "42703", "42883"})


def is_connection_lost(error: BaseException) -> bool:
    """The connection itself is gone or unusable: it must not go back to the pool."""
    if isinstance(error, psycopg2.InterfaceError):
        return True
    code = getattr(error, "pgcode", None)
    if isinstance(error, psycopg2.OperationalError) and code is None:
        return True  # libpq-level: refused, reset, closed by the server
    return bool(code and code.startswith(("08", "57P")))


def translate(error: psycopg2.Error) -> Exception | None:
    """The error to raise for ``error``; None for constraint violations, which the repository
    maps to a domain error knowing what it wrote."""
    code = error.pgcode
    if is_connection_lost(error):
        return StorageUnavailable(UNAVAILABLE_MESSAGE)
    if code and (code.startswith(_UNAVAILABLE_CLASSES) or code in _UNAVAILABLE_CODES):
        return StorageUnavailable(UNAVAILABLE_MESSAGE)
    if code and code.startswith("40"):
        # Serialization failure or deadlock: the transaction was rolled back; retry it.
        return ConcurrencyError("the transaction conflicted with a concurrent one")
    if isinstance(error, psycopg2.IntegrityError):
        return None  # which constraint, and so which domain error, is the repository's call
    if isinstance(error, psycopg2.DataError):
        # A value the column refuses (too long, out of range): the caller's bug, like the
        # ValueError the other backends raise for values they refuse.
        return ValueError(f"the database refused a value (SQLSTATE {code})")
    return StorageUnavailable(UNAVAILABLE_MESSAGE)
