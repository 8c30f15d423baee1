"""The history the model sees: newest turns within a character budget, the latest always."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.history import within_budget
from application.policy import AssistantPolicy
from domain.message import DeliveryStatus, Direction, Message, MessageType

START = datetime(2026, 1, 1, tzinfo=UTC)


def turn(n: int, body: str, direction: Direction = Direction.INBOUND) -> Message:
    at = START + timedelta(seconds=n)
    return Message(f"M{n:03d}", "C1", "owner", direction, MessageType.TEXT, body, "a", "b",
                   DeliveryStatus.RECEIVED, at, at)


def bodies(messages: list[Message]) -> list[str]:
    return [m.body for m in messages]


def test_everything_is_kept_when_it_fits() -> None:
    history = [turn(1, "oi"), turn(2, "olá", Direction.OUTBOUND), turn(3, "tudo bem?")]
    assert bodies(within_budget(history, history[-1], 100)) == ["oi", "olá", "tudo bem?"]


def test_the_oldest_turns_go_first_and_no_gap_is_left() -> None:
    history = [turn(1, "a" * 5), turn(2, "b" * 50), turn(3, "c" * 5), turn(4, "d" * 10)]
    # d (10) + c (5) = 15 of 20; b (50) does not fit, so a (5) is not sent either.
    assert bodies(within_budget(history, history[-1], 20)) == ["c" * 5, "d" * 10]


def test_the_budget_is_exact_at_the_boundary() -> None:
    history = [turn(1, "x" * 5), turn(2, "y" * 5)]
    assert len(within_budget(history, history[-1], 10)) == 2
    assert len(within_budget(history, history[-1], 9)) == 1


def test_the_latest_message_is_kept_even_alone_over_budget() -> None:
    history = [turn(1, "earlier"), turn(2, "z" * 500)]
    assert bodies(within_budget(history, history[-1], 10)) == ["z" * 500]


def test_the_latest_is_last_even_when_history_lacks_it_or_has_newer_turns() -> None:
    latest, newer = turn(2, "answer me"), turn(3, "a later message")
    assert bodies(within_budget([turn(1, "hi")], latest, 100)) == ["hi", "answer me"]
    assert bodies(within_budget([turn(1, "hi"), latest, newer], latest, 100)) == [
        "hi", "answer me"]


def test_turns_without_text_cost_nothing() -> None:
    history = [turn(1, "old"), turn(2, ""), turn(3, "new")]
    assert bodies(within_budget(history, history[-1], 6)) == ["old", "", "new"]


@pytest.mark.parametrize("bad", [{"fallback_message": "  "}, {"history_budget_chars": 0},
                                 {"history_fetch_limit": 0}])
def test_the_policy_refuses_an_empty_fallback_or_a_non_positive_budget(
    bad: dict[str, object],
) -> None:
    with pytest.raises(ValueError):
        AssistantPolicy(**bad)  # type: ignore[arg-type]
