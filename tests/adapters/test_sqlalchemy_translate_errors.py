"""What ``translate_errors`` makes of each error a SQLAlchemy statement can raise."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import exc

from adapters.sqlalchemy.engine import translate_errors
from application.errors import StorageUnavailable


def test_a_lost_database_becomes_storage_unavailable_with_its_cause() -> None:
    lost = exc.OperationalError("SELECT 1", None, sqlite3.OperationalError("disk I/O error"))
    with pytest.raises(StorageUnavailable) as raised, translate_errors():
        raise lost
    assert raised.value.__cause__ is lost


def test_a_value_refused_while_binding_is_the_callers_plain_error() -> None:
    refused = ValueError("naive datetime")
    with pytest.raises(ValueError) as raised, translate_errors(any_error=True):
        raise exc.StatementError("bind", "INSERT", {}, refused)
    assert raised.value is refused
    assert raised.value.__suppress_context__


def test_other_database_errors_pass_unless_every_error_counts() -> None:
    duplicate = exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE"))
    with pytest.raises(exc.IntegrityError) as raised, translate_errors():
        raise duplicate
    assert raised.value is duplicate
    with pytest.raises(StorageUnavailable), translate_errors(any_error=True):
        raise duplicate


@pytest.mark.parametrize("error", [RuntimeError("a bug"), asyncio.CancelledError(),
                                   StorageUnavailable("already said")])
def test_everything_else_passes_through_untouched(error: BaseException) -> None:
    with pytest.raises(type(error)) as raised, translate_errors(any_error=True):
        raise error
    assert raised.value is error

