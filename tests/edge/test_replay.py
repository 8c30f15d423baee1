"""A captured, validly signed webhook cannot be re-cut into a new message.

Twilio signs the URL plus the sorted ``name + value`` pairs with no separator, so moving a
boundary between a name and a value keeps the signature valid. Each shifted cut must be
refused, or at most be a duplicate of the captured message: never a new row, a changed
message, or a second reply job.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bootstrap.app import create_app
from bootstrap.cli import migrate
from tests.conftest import MakeSettings
from tests.edge.server import INBOUND, inbound, sign
from tests.fakes.threaded_server import ThreadedServer

SID = "SM" + "0123456789abcdef" * 2
# As in the report: no MessagingServiceSid, so NumMedia follows MessageSid when sorted.
CAPTURED = {k: v for k, v in inbound(SID, "pay 10 to alice").items()
            if k != "MessagingServiceSid"}


class Intake:
    """The app on a real loopback socket; the captured request was signed for its URL."""

    def __init__(self, client: httpx.Client, tmp: Path, base_url: str) -> None:
        self.client = client
        self.tmp = tmp
        self.url = f"{base_url}{INBOUND}"
        self.signature = sign(self.url, CAPTURED)

    def post(self, pairs: list[tuple[str, str]]) -> int:
        response = self.client.post(self.url, content=urlencode(pairs).encode(), headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": self.signature})
        return response.status_code

    def state(self) -> tuple[list[tuple[str, str]], int]:
        """(provider sid, body) of every message, and the number of queued jobs."""
        with sqlite3.connect(self.tmp / "app.db") as db:
            messages = db.execute("SELECT provider_sid, body FROM messages").fetchall()
        with sqlite3.connect(self.tmp / "queue.db") as queue:
            jobs = queue.execute("SELECT count(*) FROM jobs").fetchone()[0]
        return messages, int(jobs)


@pytest.fixture
def intake(make_settings: MakeSettings, tmp_path: Path) -> Iterator[Intake]:
    config = make_settings()
    migrate(config)
    server = ThreadedServer(create_app(config, embedded_worker=False), "replay-api")
    server.start()
    try:
        with httpx.Client(timeout=10) as client:
            yield Intake(client, tmp_path, server.base_url)
    finally:
        server.stop()


def tokens(params: dict[str, str]) -> list[str]:
    return [part for name in sorted(params) for part in (name, params[name])]


def fold(parts: list[str], pair: int) -> list[str]:
    """Pair ``pair`` (>= 1) folded into the previous value: one pair fewer, same string."""
    at = 2 * pair
    return [*parts[:at - 1], parts[at - 1] + parts[at] + parts[at + 1], *parts[at + 2:]]


def recut(parts: list[str], *moves: tuple[int, int]) -> list[tuple[str, str]]:
    """Move boundaries between tokens: each (boundary index, shift in characters)."""
    joined = "".join(parts)
    cuts = [0]
    for part in parts:
        cuts.append(cuts[-1] + len(part))
    for boundary, shift in moves:
        boundary = 1 + (boundary - 1) % (len(parts) - 1)
        cuts[boundary] = min(max(cuts[boundary] + shift, cuts[boundary - 1]),
                             cuts[boundary + 1])
    pieces = [joined[a:b] for a, b in itertools.pairwise(cuts)]
    return list(zip(pieces[::2], pieces[1::2], strict=True))


def test_the_folded_parameter_replay_is_refused(intake: Intake) -> None:
    assert intake.post(list(CAPTURED.items())) == 200
    stored = intake.state()
    folded = [(k, v + "NumMedia0" if k == "MessageSid" else v)
              for k, v in CAPTURED.items() if k != "NumMedia"]
    # It still carries a valid signature: the concatenation did not change.
    assert "".join(tokens(dict(folded))) == "".join(tokens(CAPTURED))
    assert intake.post(folded) == 422
    assert intake.state() == stored


def check_recut(intake: Intake, stored: object, pairs: list[tuple[str, str]]) -> None:
    if pairs == sorted(CAPTURED.items()):
        return  # clamped back to the original cut
    status = intake.post(pairs)
    assert status < 500
    assert intake.state() == stored, (pairs, status)
    if dict(pairs).get("MessageSid") != SID:
        assert 400 <= status < 500, (pairs, status)


def test_no_single_boundary_shift_is_accepted(intake: Intake) -> None:
    """Every boundary, every shift of up to 10 characters either way: exhaustive."""
    assert intake.post(list(CAPTURED.items())) == 200
    stored = intake.state()
    assert len(stored[0]) == 1 and stored[1] == 1
    parts = tokens(CAPTURED)
    for boundary in range(1, len(parts)):
        for shift in [*range(-10, 0), *range(1, 11)]:
            check_recut(intake, stored, recut(parts, (boundary, shift)))
    for pair in range(1, len(CAPTURED)):  # every fold of one pair into the one before
        check_recut(intake, stored, recut(fold(parts, pair)))


def test_no_boundary_shifts_of_a_captured_request_are_accepted(intake: Intake) -> None:
    """Property: any two boundaries moved by any amount."""
    assert intake.post(list(CAPTURED.items())) == 200
    stored = intake.state()
    parts = tokens(CAPTURED)
    move = st.tuples(st.integers(1, 2 * len(parts)), st.integers(-60, 60).filter(bool))

    @settings(max_examples=200, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(folds=st.lists(st.integers(1, len(CAPTURED) - 1), max_size=2, unique=True),
           moves=st.lists(move, max_size=2))
    def shifted(folds: list[int], moves: list[tuple[int, int]]) -> None:
        cut = parts
        for pair in sorted(folds, reverse=True):  # later pairs first: indices stay valid
            cut = fold(cut, pair)
        check_recut(intake, stored, recut(cut, *moves))

    shifted()
