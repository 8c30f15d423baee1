"""A worker killed mid-job on the SQLite queue: its job runs again within seconds.

The lease is short (``QUEUE_SQLITE_LEASE_SECONDS``, default 5 s) and the running worker
renews it every third of that, so a live worker keeps its job however long it runs,
while a dead one lets it go after at most one lease, not after the minute it used to be.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.settings import Settings
from tests.e2e.test_worker_process import World, wait_exit
from tests.fakes.fake_llm import DEFAULT_API_KEY, FakeLLMServer
from tests.fakes.fake_twilio import FakeTwilioServer

pytestmark = pytest.mark.e2e

DEFAULT_LEASE = Settings.model_fields["queue_sqlite_lease_seconds"].default


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


def test_a_killed_workers_job_is_redelivered_within_one_lease_and_sent_once(
    tmp_path: Path, llm: FakeLLMServer, twilio: FakeTwilioServer
) -> None:
    w = World(tmp_path, "sqlite", None, twilio, LLM_PROVIDER="openai",
              LLM_BASE_URL=llm.base_url, LLM_API_KEY=DEFAULT_API_KEY, LLM_MODEL_NAME="m")
    try:
        [sid] = w.intake("are you there?")
        llm.delay_seconds = 60.0  # the reply is being composed when the kill lands
        doomed = w.start_worker()
        _wait_until(lambda: len(llm.requests) == 1, w, 20)
        survivor = w.start_worker()
        # Longer than a lease: the live worker's heartbeat keeps its job from the other.
        time.sleep(DEFAULT_LEASE * 1.5)
        assert len(llm.requests) == 1, w.output()

        llm.delay_seconds = 0.0
        doomed.kill()  # SIGKILL: no hand-back, the lease is all that is left
        killed_at = time.monotonic()
        assert wait_exit(doomed, w, 10) == -9
        [sent] = twilio.wait_for_sends(1, timeout=DEFAULT_LEASE + 10)
        recovered = time.monotonic() - killed_at
        print(f"\nSQLite queue, worker kill -9 mid-job: job redelivered and its reply sent "
              f"{recovered:.2f}s after the kill (lease {DEFAULT_LEASE}s)")
        assert sent.body == "LLM: are you there?"
        assert recovered < DEFAULT_LEASE + 5  # one lease and a poll, not the old 60 s
        assert len(llm.requests) == 2  # composed again by the survivor
        time.sleep(1.0)
        assert len(twilio.sent) == 1
        assert w.reply_status(sid) == "sent"  # Twilio accepted it
        assert survivor.poll() is None
    finally:
        w.kill_all()


def _wait_until(condition: object, w: World, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met in {timeout}s\n{w.output()}")
        time.sleep(0.05)
