"""Units that lose a race to the same conversation are run again, a bounded number of times."""

from __future__ import annotations

import pytest

from application.errors import ConcurrencyError
from application.use_cases.conversations import CONFLICT_RETRIES, retry_on_conflict


def losing(times: int) -> tuple[list[int], object]:
    calls: list[int] = []

    async def unit() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise ConcurrencyError("another unit committed first")
        return "stored"

    return calls, unit


async def test_a_unit_that_loses_every_round_but_the_last_is_stored() -> None:
    calls, unit = losing(CONFLICT_RETRIES - 1)
    assert await retry_on_conflict(unit) == "stored"  # type: ignore[arg-type]
    assert len(calls) == CONFLICT_RETRIES


async def test_the_attempts_are_bounded() -> None:
    calls, unit = losing(CONFLICT_RETRIES)
    with pytest.raises(ConcurrencyError):
        await retry_on_conflict(unit)  # type: ignore[arg-type]
    assert len(calls) == CONFLICT_RETRIES


async def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    async def unit() -> None:
        calls.append(1)
        raise ValueError("not a conflict")

    with pytest.raises(ValueError):
        await retry_on_conflict(unit)
    assert calls == [1]
