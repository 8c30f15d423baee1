"""The sweep that re-queues replies a queue lost, on in-memory fakes."""

from __future__ import annotations

from datetime import timedelta

from adapters.in_memory.job_queue import InMemoryJobQueue
from application.tasks import GENERATE_REPLY, GenerateReplyPayload
from application.use_cases.requeue_stalled import RequeueStalledReplies, StalledReplies
from tests.unit.conftest import Fakes
from tests.unit.test_use_cases import drain, inbound

AFTER = StalledReplies(older_than=timedelta(minutes=5))


def sweep(fakes: Fakes) -> RequeueStalledReplies:
    return RequeueStalledReplies(fakes.uow(), fakes.queue, fakes.queue, fakes.clock)


async def test_a_lost_reply_job_is_queued_again_once_past_the_threshold(fakes: Fakes) -> None:
    await fakes.receive().execute(inbound(body="are you there?"))
    fakes.queue = InMemoryJobQueue(max_attempts=3)  # the queue lost everything (a flush)
    assert await sweep(fakes).execute(AFTER) == 0  # too recent: its job may still be coming
    fakes.clock.advance(timedelta(minutes=6))
    assert await sweep(fakes).execute(AFTER) == 1
    assert await sweep(fakes).execute(AFTER) == 0  # the queued copy holds the dedup key
    [job] = await fakes.queue.receive(10, 0)
    assert job.task == GENERATE_REPLY
    assert job.dedup_key == f"{GENERATE_REPLY}:{job.payload['message_id']}"
    assert job.headers["correlation_id"] == inbound().message_sid
    await fakes.queue.retry(job, "put back", 0)
    assert await drain(fakes) == [GENERATE_REPLY, "send_message"]
    assert [e.body for e in fakes.sender.sent] == ["Echo: are you there?"]
    fakes.clock.advance(timedelta(hours=2))
    assert await sweep(fakes).execute(AFTER) == 0  # replied: nothing to recover


async def test_a_waiting_job_is_not_duplicated(fakes: Fakes) -> None:
    await fakes.receive().execute(inbound())
    fakes.clock.advance(timedelta(minutes=6))
    assert await sweep(fakes).execute(AFTER) == 0
    assert await fakes.queue.depth() == 1


async def test_a_dead_lettered_message_is_left_to_the_operator(fakes: Fakes) -> None:
    await fakes.receive().execute(inbound())
    [job] = await fakes.queue.receive(1, 0)
    await fakes.queue.dead_letter(job, "responder down")
    fakes.clock.advance(timedelta(minutes=6))
    assert await sweep(fakes).execute(AFTER) == 0
    assert await fakes.queue.depth() == 0
    [dead] = await fakes.queue.list_dead()
    assert await fakes.queue.replay(dead.id)
    assert await drain(fakes) == [GENERATE_REPLY, "send_message"]


async def test_a_stored_reply_whose_send_job_was_lost_is_sent_once(fakes: Fakes) -> None:
    await fakes.receive().execute(inbound(body="still there?"))
    [job] = await fakes.queue.receive(1, 0)
    await fakes.generate().execute(GenerateReplyPayload.from_payload(job.payload))
    await fakes.queue.ack(job)
    fakes.queue = InMemoryJobQueue(max_attempts=3)  # the send job is lost with the queue
    fakes.clock.advance(timedelta(minutes=6))
    assert await sweep(fakes).execute(AFTER) == 1
    assert await drain(fakes) == ["send_message"]
    assert [e.body for e in fakes.sender.sent] == ["Echo: still there?"]
    fakes.clock.advance(timedelta(minutes=6))
    assert await sweep(fakes).execute(AFTER) == 0  # sent: no longer pending
    assert len(fakes.sender.sent) == 1
