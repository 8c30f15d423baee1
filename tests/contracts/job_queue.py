"""Behaviour every job queue adapter must show (JobQueue + JobConsumer + DeadLetterStore).

Subclass ``JobQueueContract`` once per adapter (as ``Test...``) and supply a ``make_queue``
fixture: a factory ``make_queue(**options) -> queue`` accepting at least
``visibility_timeout``, ``max_attempts`` and ``poll_interval`` (an adapter that has no use
for one may ignore it), which closes what it made at teardown. ``queue`` defaults to
``make_queue()``; a subclass may override it. Queues must also offer ``ping``, ``close``,
``depth`` and ``dead_count``. Timings are short but every assertion about time is a bound
that only a broken queue can miss, never a race.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from application.errors import PayloadTooLarge, QueueUnavailable

# Long enough that a receive returning quickly can only have been woken up, not polled.
LONG_POLL = 30.0


class JobQueueContract:
    # The limit the adapter under test enforces; override in a subclass if it differs.
    max_payload_bytes: int = 256 * 1024

    @pytest.fixture
    def queue(self, make_queue: Any) -> Any:
        return make_queue(poll_interval=LONG_POLL)

    # -- availability ---------------------------------------------------------------------

    async def test_ping_succeeds_and_counts_start_at_zero(self, queue: Any) -> None:
        await queue.ping()
        assert await queue.depth() == 0
        assert await queue.dead_count() == 0

    async def test_closed_queue_is_unavailable(self, make_queue: Any) -> None:
        queue = make_queue()
        await queue.ping()
        await queue.close()
        with pytest.raises(QueueUnavailable):
            await queue.ping()
        with pytest.raises(QueueUnavailable):
            await queue.enqueue("t", {})

    # -- payloads -------------------------------------------------------------------------

    async def test_payload_and_metadata_round_trip_exactly(self, make_queue: Any) -> None:
        queue = make_queue(max_attempts=3)
        payload = {
            "text": "Olá, ação! 日本語 \u200b tab\tnew\nline \"quoted\" \\ back",
            "emoji": "👍🏽🇧🇷👨‍👩‍👧",
            "nested": {"list": [1, 2.5, None, True, False, {"deep": ["x", {"y": -1}]}]},
            "empty": {},
            "big_int": 2**53,
        }
        before = datetime.now(UTC)
        job_id = await queue.enqueue(
            "generate_reply", payload, dedup_key="k:1", headers={"trace": "abc-123"}
        )
        assert isinstance(job_id, str) and job_id
        [job] = await queue.receive(max_jobs=10, wait_seconds=0)
        assert job.id == job_id
        assert job.task == "generate_reply"
        assert job.payload == payload
        assert job.dedup_key == "k:1"
        assert dict(job.headers) == {"trace": "abc-123"}
        assert job.attempt == 1
        assert job.max_attempts == 3
        assert job.enqueued_at.tzinfo is not None
        assert before - timedelta(seconds=1) <= job.enqueued_at <= datetime.now(UTC)

    async def test_large_payload_just_under_the_limit_round_trips(self, queue: Any) -> None:
        # Multi-byte characters count by their encoded size, so stay clearly under.
        body = "é" * 1000 + "x" * (self.max_payload_bytes - 2000 - 1024)
        await queue.enqueue("big", {"body": body})
        [job] = await queue.receive(1, 0)
        assert job.payload == {"body": body}

    async def test_payload_past_the_limit_is_refused_and_not_stored(self, queue: Any) -> None:
        with pytest.raises(PayloadTooLarge):
            await queue.enqueue("big", {"body": "x" * (self.max_payload_bytes + 1024)})
        assert await queue.depth() == 0

    @pytest.mark.parametrize(
        "payload", [{"when": datetime.now(UTC)}, {"nan": float("nan")}, {"s": {1, 2}}]
    )
    async def test_unserialisable_payload_is_refused(self, queue: Any, payload: Any) -> None:
        with pytest.raises((TypeError, ValueError)):
            await queue.enqueue("t", payload)
        assert await queue.depth() == 0

    # -- ack, retry, delay ----------------------------------------------------------------

    async def test_acked_job_is_never_delivered_again(self, make_queue: Any) -> None:
        queue = make_queue(visibility_timeout=0.2, poll_interval=0.05)
        await queue.enqueue("t", {"n": 1})
        [job] = await queue.receive(1, 0)
        assert await queue.depth() == 1
        await queue.ack(job)
        assert await queue.depth() == 0
        # Well past the lease: an un-acked job would have come back by now.
        assert await queue.receive(1, wait_seconds=0.5) == []

    async def test_receive_takes_at_most_max_jobs(self, queue: Any) -> None:
        for n in range(3):
            await queue.enqueue("t", {"n": n})
        first = await queue.receive(2, 0)
        rest = await queue.receive(10, 0)
        assert len(first) == 2 and len(rest) == 1
        assert {j.payload["n"] for j in first + rest} == {0, 1, 2}

    async def test_retried_job_comes_back_after_its_delay(self, queue: Any) -> None:
        await queue.enqueue("t", {"n": 1})
        [job] = await queue.receive(1, 0)
        start = time.monotonic()
        await queue.retry(job, "temporary failure", delay_seconds=0.5)
        assert await queue.receive(1, 0) == []
        assert await queue.depth() == 1
        [again] = await queue.receive(1, wait_seconds=5)
        elapsed = time.monotonic() - start
        assert again.id == job.id
        assert again.attempt == 2
        assert again.payload == {"n": 1}
        assert elapsed >= 0.49
        # The receiver woke when the job became due, not at the (long) poll interval.
        assert elapsed < 3

    async def test_delayed_job_is_not_delivered_early(self, queue: Any) -> None:
        start = time.monotonic()
        # 1.5 s, not less: on a loaded 2-core machine one moto round trip can take 0.5 s,
        # and the "not yet" receive below must happen before the job is due.
        await queue.enqueue("t", {"n": 1}, delay_seconds=1.5)
        assert await queue.receive(1, 0) == []
        assert await queue.depth() == 1
        [job] = await queue.receive(1, wait_seconds=6)
        elapsed = time.monotonic() - start
        assert job.attempt == 1
        assert 1.49 <= elapsed < 5

    # -- dedup ----------------------------------------------------------------------------

    async def test_dedup_key_keeps_a_single_job(self, queue: Any) -> None:
        first = await queue.enqueue("t", {"v": 1}, dedup_key="msg:1")
        assert first is not None
        assert await queue.enqueue("t", {"v": 2}, dedup_key="msg:1") is None
        assert await queue.enqueue("t", {"v": 3}, dedup_key="msg:2") is not None
        assert await queue.depth() == 2
        jobs = await queue.receive(10, 0)
        assert sorted(j.payload["v"] for j in jobs) == [1, 3]
        # Still refused while running, and after it is done (within the retention window).
        assert await queue.enqueue("t", {"v": 4}, dedup_key="msg:1") is None
        for job in jobs:
            await queue.ack(job)
        assert await queue.enqueue("t", {"v": 5}, dedup_key="msg:1") is None
        assert await queue.depth() == 0
        assert await queue.receive(10, 0) == []

    # -- leases ---------------------------------------------------------------------------

    async def test_expired_lease_redelivers_and_stale_holder_cannot_touch_it(
        self, make_queue: Any
    ) -> None:
        queue = make_queue(visibility_timeout=0.5, poll_interval=LONG_POLL)
        await queue.enqueue("t", {"n": 1})
        [stale] = await queue.receive(1, 0)
        assert stale.attempt == 1
        assert await queue.receive(1, 0) == []  # the lease holds
        [job] = await queue.receive(1, wait_seconds=5)
        assert job.id == stale.id
        assert job.attempt == 2
        # The first consumer finally answers: none of it may clobber the second's run.
        await queue.ack(stale)
        await queue.retry(stale, "late", delay_seconds=0)
        await queue.dead_letter(stale, "late")
        assert await queue.depth() == 1
        assert await queue.dead_count() == 0
        assert await queue.receive(1, 0) == []
        await queue.ack(job)
        assert await queue.depth() == 0

    async def test_extended_lease_keeps_the_job_invisible(self, make_queue: Any) -> None:
        queue = make_queue(visibility_timeout=0.2, poll_interval=0.05)
        await queue.enqueue("t", {"n": 1})
        [job] = await queue.receive(1, 0)
        await queue.extend_lease(job, 30)
        assert await queue.receive(1, wait_seconds=0.5) == []
        await queue.ack(job)
        assert await queue.depth() == 0

    async def test_concurrent_receivers_never_share_a_job(self, queue: Any) -> None:
        for n in range(6):
            await queue.enqueue("t", {"n": n})
        batches = await asyncio.gather(*(queue.receive(4, 0) for _ in range(3)))
        ids = [job.id for batch in batches for job in batch]
        assert len(ids) == 6
        assert len(set(ids)) == 6
        assert await queue.receive(10, 0) == []

    # -- dead letters ---------------------------------------------------------------------

    async def test_dead_letter_list_and_replay(self, queue: Any) -> None:
        payload = {"message_id": "m-1", "note": "ünïcode ✓"}
        await queue.enqueue("send_message", payload, dedup_key="send:m-1")
        [job] = await queue.receive(1, 0)
        await queue.retry(job, "first failure", delay_seconds=0)
        [job] = await queue.receive(1, 0)
        await queue.dead_letter(job, "gave up: 500 from provider")
        assert await queue.depth() == 0
        assert await queue.receive(1, 0) == []

        [dead] = await queue.list_dead()
        assert dead.task == "send_message"
        assert dead.payload == payload
        assert dead.attempts == 2
        assert dead.last_error == "gave up: 500 from provider"
        assert dead.dedup_key == "send:m-1"
        assert dead.failed_at.tzinfo is not None
        assert await queue.dead_count() == 1

        assert await queue.replay(dead.id) is True
        assert await queue.list_dead() == []
        [again] = await queue.receive(1, 0)
        assert again.task == "send_message"
        assert again.payload == payload
        assert again.attempt == 1
        assert again.dedup_key == "send:m-1"
        assert await queue.replay(dead.id) is False
        assert await queue.replay("01ARZ3NDEKTSV4RRFFQ69G5FAV") is False

    async def test_replay_while_the_key_is_taken_stores_no_second_job(self, queue: Any) -> None:
        await queue.enqueue("t", {"v": 1}, dedup_key="k")
        [job] = await queue.receive(1, 0)
        await queue.dead_letter(job, "boom")
        await queue.enqueue("t", {"v": 2}, dedup_key="k")  # the key is free once dead-lettered
        [dead] = await queue.list_dead()
        assert await queue.replay(dead.id) is True
        assert await queue.dead_count() == 0
        [live] = await queue.receive(10, 0)
        assert live.payload == {"v": 2}

    async def test_purge_empties_the_dead_letters(self, queue: Any) -> None:
        for n in range(2):
            await queue.enqueue("t", {"n": n})
        for job in await queue.receive(10, 0):
            await queue.dead_letter(job, "boom")
        assert len(await queue.list_dead(limit=1)) == 1
        assert len(await queue.list_dead()) == 2
        assert await queue.purge() == 2
        assert await queue.list_dead() == []
        assert await queue.dead_count() == 0
        assert await queue.purge() == 0

    # -- waiting --------------------------------------------------------------------------

    async def test_waiting_receive_wakes_promptly_on_enqueue(self, make_queue: Any) -> None:
        queue = make_queue(poll_interval=LONG_POLL)
        waiting = asyncio.create_task(queue.receive(1, wait_seconds=20))
        await asyncio.sleep(0.05)  # lets it start waiting; the assertions do not rely on it
        start = time.monotonic()
        job_id = await queue.enqueue("t", {"n": 1})
        jobs = await asyncio.wait_for(waiting, timeout=10)
        assert [j.id for j in jobs] == [job_id]
        assert time.monotonic() - start < 2  # far below the 30 s poll interval

    async def test_waiting_receive_can_be_cancelled(self, queue: Any) -> None:
        waiting = asyncio.create_task(queue.receive(1, wait_seconds=20))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await queue.enqueue("t", {"n": 1})
        [job] = await queue.receive(1, 0)
        assert job.attempt == 1
