"""Model failures end to end: real worker processes, the fake LLM and fake Twilio servers.

A permanent failure sends the fallback once with no retry; transient failures are retried
(not sooner than the model's Retry-After) until a normal reply; a model that never answers
gets the fallback after the last attempt. On SQLite (database and queue) and on arq with
PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from tests.e2e.model_world import BACKENDS, model_world
from tests.e2e.test_worker_process import World
from tests.fakes.fake_llm import FakeLLMServer
from tests.fakes.fake_twilio import FakeTwilioServer

pytestmark = pytest.mark.e2e

MAX_ATTEMPTS = 4
FALLBACK = "We are having trouble; a colleague will answer you shortly."


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path, llm: FakeLLMServer,
          twilio: FakeTwilioServer) -> Iterator[World]:
    yield from model_world(
        request, tmp_path, llm, twilio, QUEUE_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        WORKER_BACKOFF_BASE_SECONDS="0.05", WORKER_BACKOFF_MAX_SECONDS="0.2",
        ASSISTANT_FALLBACK_MESSAGE=FALLBACK)


def reply_of(w: World, sid: str) -> Any:
    async def go(container: Any) -> Any:
        async with container[UnitOfWork] as uow:
            inbound = await uow.repository(MessageRepository).get_by_provider_sid(sid)
            return await uow.repository(MessageRepository).get_reply_to(inbound.id)

    return w.run(go)


def settle(twilio: FakeTwilioServer, n: int, w: World, timeout: float = 30) -> None:
    try:
        twilio.wait_for_sends(n, timeout=timeout)
    except TimeoutError:
        pytest.fail(f"expected {n} send(s)\n{w.output()}")
    time.sleep(1.0)  # room for a wrongly repeated job or second send to show up


def test_a_permanent_model_error_sends_the_fallback_once_and_never_retries(
    world: World, llm: FakeLLMServer, twilio: FakeTwilioServer
) -> None:
    llm.fail_next(status=400, code="context_length_exceeded")
    [sid] = world.intake("tell me everything")
    settle(twilio, 1, world)
    [sent] = twilio.sent
    assert sent.body == FALLBACK
    assert llm.attempts == 1, world.output()  # no retry of a request that cannot succeed
    reply = reply_of(world, sid)
    assert reply.body == FALLBACK and reply.metadata["needs_person"] is True
    assert reply.metadata["fallback_reason"] == "context_length_exceeded"
    assert world.depth() == 0  # handled, not dead-lettered


def test_three_transient_errors_then_success_give_one_normal_reply(
    world: World, llm: FakeLLMServer, twilio: FakeTwilioServer
) -> None:
    # Retry-After: 1 is far above the 0.05 s backoff: the retries must wait for it.
    llm.fail_next(status=503, code="overloaded", times=3, retry_after="1")
    [sid] = world.intake("are you there?")
    settle(twilio, 1, world)
    [sent] = twilio.sent
    assert sent.body == "LLM: are you there?"
    assert llm.attempts == 4, world.output()
    gaps = [b - a for a, b in zip(llm.attempt_times, llm.attempt_times[1:], strict=False)]
    assert min(gaps) >= 0.9, gaps  # each retry honoured the model's Retry-After
    reply = reply_of(world, sid)
    assert "needs_person" not in reply.metadata


def test_a_model_failing_every_attempt_gets_one_fallback_after_the_last(
    world: World, llm: FakeLLMServer, twilio: FakeTwilioServer
) -> None:
    llm.fail_next(status=503, code=None, times=MAX_ATTEMPTS + 5)  # plain text, as a proxy's
    [sid] = world.intake("hello?")
    settle(twilio, 1, world)
    [sent] = twilio.sent
    assert sent.body == FALLBACK
    assert llm.attempts == MAX_ATTEMPTS, world.output()
    metadata = reply_of(world, sid).metadata
    # The send records its parts beside the flag (one part here).
    assert (metadata["needs_person"], metadata["fallback_reason"]) == (True, "503")
    assert metadata["parts"]["total"] == 1
    assert world.depth() == 0

