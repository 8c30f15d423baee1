"""Properties of the domain's value objects and status rules."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidIdentifier, InvalidStatusTransition, InvalidWhatsAppAddress
from domain.ids import new_ulid, parse_ulid, ulid_timestamp_ms
from domain.message import FAILURES, DeliveryStatus
from domain.whatsapp import WhatsAppAddress

e164 = st.builds(
    lambda first, rest: f"+{first}{rest}",
    st.integers(1, 9),
    st.text(alphabet="0123456789", min_size=6, max_size=14),
)


@given(e164)
def test_address_round_trips(number: str) -> None:
    address = WhatsAppAddress.parse(f"whatsapp:{number}")
    assert str(address) == f"whatsapp:{number}"
    assert WhatsAppAddress.parse(str(address)) == address
    assert address.phone.e164 == number


@given(e164, st.sampled_from(["WhatsApp:", "WHATSAPP:", "whatsapp:"]), st.sampled_from(["", " "]))
def test_prefix_case_and_surrounding_space_are_normalised(
    number: str, prefix: str, pad: str
) -> None:
    assert str(WhatsAppAddress.parse(f"{pad}{prefix}{number}{pad}")) == f"whatsapp:{number}"


@given(st.text(max_size=40))
def test_arbitrary_text_parses_only_into_a_canonical_address(text: str) -> None:
    try:
        address = WhatsAppAddress.parse(text)
    except InvalidWhatsAppAddress:
        return
    canonical = str(address)
    assert canonical.startswith("whatsapp:+")
    assert canonical[len("whatsapp:+"):].isdigit()
    assert canonical.lower() == text.strip().lower()


@pytest.mark.parametrize(
    "bad",
    [
        "", "whatsapp:", "+5511999999999", "whatsapp:5511999999999", "whatsapp:+0511999999",
        "whatsapp:+55 11 99999 9999", "whatsapp:+1234", "whatsapp:+1234567890123456",
        "sms:+5511999999999", "whatsapp:+55119999x9999", "whatsapp:++5511999999999",
        "whatsapp:+٥٥١١٩٩٩٩٩٩٩٩",  # non-ASCII digits must not pass as E.164
    ],
)
def test_malformed_addresses_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidWhatsAppAddress):
        WhatsAppAddress.parse(bad)


@given(st.lists(st.sampled_from(list(DeliveryStatus)), max_size=30),
       st.sampled_from([DeliveryStatus.PENDING, DeliveryStatus.QUEUED]))
def test_status_never_moves_backwards(updates: list[DeliveryStatus], start: DeliveryStatus) -> None:
    current, seen = start, [start]
    for update in updates:
        if current.can_become(update):
            current = update
            seen.append(current)
    ranks = [s.rank for s in seen]
    assert ranks == sorted(ranks)
    # Once final, nothing changes it; a failure never follows a delivery.
    for earlier, later in itertools.pairwise(seen):
        assert not earlier.is_final
        if later in FAILURES:
            assert earlier.rank < DeliveryStatus.DELIVERED.rank


@given(st.lists(st.sampled_from(list(DeliveryStatus)), min_size=1, max_size=30))
def test_replaying_any_received_callback_changes_nothing(
    updates: list[DeliveryStatus],
) -> None:
    current = DeliveryStatus.PENDING
    for update in updates:
        if current.can_become(update):
            current = update
    # Twilio redelivers callbacks: once applied in any order, none of them moves it again.
    assert not any(current.can_become(update) for update in updates)


def test_backward_move_through_the_entity_raises() -> None:
    from datetime import UTC, datetime

    from domain.message import Direction, Message, MessageType

    now = datetime.now(UTC)
    message = Message("01", "c", "o", Direction.OUTBOUND, MessageType.TEXT, "hi", "a", "b",
                      DeliveryStatus.DELIVERED, now, now)
    with pytest.raises(InvalidStatusTransition):
        message.with_status(DeliveryStatus.SENT, now)
    assert message.with_status(DeliveryStatus.READ, now).status is DeliveryStatus.READ


def test_predecessors_are_exactly_the_statuses_that_can_move_there() -> None:
    for target in DeliveryStatus:
        for source in DeliveryStatus:
            assert (source in target.predecessors()) == source.can_become(target)


@given(st.integers(0, (1 << 48) - 1), st.binary(min_size=10, max_size=10))
def test_ulid_round_trips_its_timestamp_and_sorts_by_time(ts: int, rnd: bytes) -> None:
    ulid = new_ulid(ts, rnd)
    assert parse_ulid(ulid.lower()) == ulid
    assert ulid_timestamp_ms(ulid) == ts
    if ts < (1 << 48) - 1:
        assert new_ulid(ts + 1, b"\0" * 10) > ulid


@pytest.mark.parametrize("bad", ["", "not-a-ulid", "8" + "0" * 25, "0" * 25, "I" * 26])
def test_invalid_ulids_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidIdentifier):
        parse_ulid(bad)
