"""The sweep that re-queues replies a queue lost, on in-memory fakes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from adapters.in_memory.job_queue import InMemoryJobQueue
from application.channel_policy import ChannelPolicy
from application.policy import MediaPolicy
from application.ports.message_repository import MessageRepository
from application.tasks import (
    DOWNLOAD_MEDIA,
    GENERATE_REPLY,
    SEND_MESSAGE,
    TRANSCRIBE_AUDIO,
    GenerateReplyPayload,
    StalledJob,
)
from application.use_cases.requeue_stalled import (
    RequeueStalledWork,
    StalledWorkFinders,
    SweepPolicy,
)
from application.use_cases.stalled_messages import RepliesNeverGenerated, RepliesNeverSent
from tests.unit.conftest import Fakes
from tests.unit.test_use_cases import drain, inbound

AFTER = SweepPolicy(older_than=timedelta(minutes=5))


class Sweep:
    """The sweep over the WhatsApp tasks' finders, built by hand as bootstrap builds it."""

    def __init__(self, fakes: Fakes) -> None:
        self._fakes = fakes

    async def execute(self, policy: SweepPolicy) -> int:
        fakes = self._fakes
        finders = StalledWorkFinders({GENERATE_REPLY: RepliesNeverGenerated(fakes.uow()),
                                      SEND_MESSAGE: RepliesNeverSent(fakes.uow())})
        return await RequeueStalledWork(finders, policy, fakes.queue, fakes.queue,
                                        fakes.clock).execute()


def sweep(fakes: Fakes) -> Sweep:
    return Sweep(fakes)


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


class FixedFinder:
    """Another module's finder: it reports the same lost work whatever the time."""

    def __init__(self, *jobs: StalledJob) -> None:
        self.jobs = jobs
        self.asked: list[tuple[datetime, int]] = []

    async def find(self, before: datetime, limit: int) -> list[StalledJob]:
        self.asked.append((before, limit))
        return list(self.jobs[:limit])


async def test_any_tasks_finder_is_swept_and_dead_or_waiting_work_is_left_alone(
    fakes: Fakes,
) -> None:
    finder = FixedFinder(StalledJob({"invoice_id": "i1"}, "pay:i1", "corr-1"),
                         StalledJob({"invoice_id": "i2"}, "pay:i2"),
                         StalledJob({"invoice_id": "i3"}, "pay:i3"))
    await fakes.queue.enqueue("billing.pay", {"invoice_id": "i2"}, dedup_key="pay:i2")
    [waiting] = await fakes.queue.receive(1, 0)
    await fakes.queue.dead_letter(waiting, "gave up")  # i2 waits for an operator
    await fakes.queue.enqueue("billing.pay", {"invoice_id": "i3"}, dedup_key="pay:i3")
    sweep = RequeueStalledWork(StalledWorkFinders({"billing.pay": finder}),
                               SweepPolicy(timedelta(minutes=5), limit=10),
                               fakes.queue, fakes.queue, fakes.clock)
    assert await sweep.execute() == 1  # i1 only: i2 is dead, i3 still waiting
    assert finder.asked == [(fakes.clock.now() - timedelta(minutes=5), 10)]
    jobs = await fakes.queue.receive(10, 0)
    assert sorted(j.payload["invoice_id"] for j in jobs) == ["i1", "i3"]
    [recovered] = [j for j in jobs if j.payload["invoice_id"] == "i1"]
    assert (recovered.task, recovered.dedup_key) == ("billing.pay", "pay:i1")
    assert recovered.headers["correlation_id"] == "corr-1"


async def _stalled_step(fakes: Fakes, transcribe: bool = False) -> list[str]:
    finder = RepliesNeverGenerated(fakes.uow(), MediaPolicy(transcribe_audio=transcribe))
    return [job.task or GENERATE_REPLY
            for job in await finder.find(fakes.clock.now() + timedelta(minutes=1), 10)]


async def _set_media(fakes: Fakes, message_id: str, item: dict[str, str]) -> None:
    async with fakes.uow() as uow:
        messages = uow.repository(MessageRepository)
        message = await messages.get_by_id(message_id)
        assert message is not None
        await messages.update(replace(message, metadata={**message.metadata, "media": [item]}))
        await uow.commit()


async def test_a_reply_waiting_for_its_media_starts_again_at_the_lost_step(
    fakes: Fakes,
) -> None:
    """A lost download (or transcription) job is queued again, not the reply: a reply
    generated then would not see the media."""
    voice = {"url": "https://api.twilio.com/media/ME1", "content_type": "audio/ogg"}
    result = await fakes.receive().execute(inbound(body=""))
    await _set_media(fakes, result.message_id, voice)
    assert await _stalled_step(fakes) == [DOWNLOAD_MEDIA]
    await _set_media(fakes, result.message_id, voice | {"blob_key": "o/m/0",
                                                        "stored_type": "audio/ogg"})
    assert await _stalled_step(fakes, transcribe=True) == [TRANSCRIBE_AUDIO]
    assert await _stalled_step(fakes, transcribe=False) == [GENERATE_REPLY]
    await _set_media(fakes, result.message_id, voice | {"blob_key": "o/m/0",
                                                        "stored_type": "audio/ogg",
                                                        "transcript": "hello"})
    assert await _stalled_step(fakes, transcribe=True) == [GENERATE_REPLY]
    fakes.queue = InMemoryJobQueue(max_attempts=3)  # the queue lost everything
    await _set_media(fakes, result.message_id, voice)
    fakes.clock.advance(timedelta(minutes=6))
    assert await sweep(fakes).execute(AFTER) == 1
    [job] = await fakes.queue.receive(10, 0)
    assert (job.task, job.dedup_key) == (DOWNLOAD_MEDIA, f"{DOWNLOAD_MEDIA}:{result.message_id}")


async def test_a_reply_lost_longer_than_the_window_is_left_alone(fakes: Fakes) -> None:
    await fakes.receive().execute(inbound(body="still there?"))
    fakes.queue = InMemoryJobQueue(max_attempts=3)  # the queue lost everything (a flush)
    # Past the 24-hour window (plus the sweep's threshold) the reply is not recovered:
    # it could not go out as text any more, and the sweep reads only recent messages.
    fakes.clock.advance(timedelta(hours=24, minutes=6))
    assert await sweep(fakes).execute(AFTER) == 0
    # The message is still there, without a reply: a longer window finds it.
    longer = RepliesNeverGenerated(fakes.uow(), channel=ChannelPolicy(window=timedelta(days=2)))
    [job] = await longer.find(fakes.clock.now() - AFTER.older_than, 10)
    assert job.task is None and job.correlation_id == inbound().message_sid
