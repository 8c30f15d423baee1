"""The WhatsApp channel end to end, on SQLite (its queue) and on arq + PostgreSQL: real
worker processes, the fake Twilio server over loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import redis

from adapters.twilio.long_text import split_text
from application.ports.blob_store import BlobStore
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from application.use_cases.receive_inbound import InboundMessage, ReceiveInboundMessage
from domain.message import Message
from tests.adapters.test_blob_stores import new_bucket
from tests.e2e.test_worker_process import CONTACT, OUR_NUMBER, World
from tests.fakes.fake_twilio import FakeTwilioServer
from tests.fakes.moto_sqs import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, moto_sqs

pytestmark = pytest.mark.e2e
__all__ = ["moto_sqs"]  # the fixture, for S3 on moto's server

# Echoed back with "Echo: ": about 3,900 characters, three parts.
LONG = " ".join(f"Sentence number {n} says something." for n in range(110))


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        server.reply_status = "sent"
        yield server


@pytest.fixture(params=["sqlite", "arq+postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path,
          twilio: FakeTwilioServer) -> Iterator[Any]:
    """SQLite keeps media in a local directory; arq + PostgreSQL in S3 (moto's server)."""
    extra: dict[str, str] = {"WORKER_BACKOFF_BASE_SECONDS": "0.05",
                             "TWILIO_MEDIA_DIR": str(tmp_path / "media")}
    redis_url = None
    backend = "sqlite"
    if request.param == "arq+postgres":
        backend = "arq"
        redis_url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(redis_url).flushdb()
        moto = request.getfixturevalue("moto_sqs")
        extra |= {"DATABASE_BACKEND": "postgres",
                  "DATABASE_URL": request.getfixturevalue("postgres_database"),
                  "TWILIO_MEDIA_STORE": "s3", "TWILIO_MEDIA_S3_BUCKET": new_bucket(moto),
                  "TWILIO_MEDIA_S3_ENDPOINT_URL": moto.endpoint_url,
                  "TWILIO_MEDIA_S3_REGION": REGION,
                  "TWILIO_MEDIA_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
                  "TWILIO_MEDIA_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY}
    made: list[World] = []

    def make(**more: str) -> World:
        w = World(tmp_path, backend, redis_url, twilio, **(extra | more))
        made.append(w)
        return w

    yield make
    for w in made:
        w.kill_all()
    if redis_url:
        redis.Redis.from_url(redis_url).flushdb()


def _reply(w: World, sid: str) -> Message | None:
    async def go(container: Any) -> Message | None:
        async with container[UnitOfWork] as uow:
            messages = uow.repository(MessageRepository)
            inbound = await messages.get_by_provider_sid(sid)
            return await messages.get_reply_to(inbound.id) if inbound else None

    result: Message | None = w.run(go)
    return result


def _wait_for(w: World, sid: str, status: str, timeout: float = 40) -> Message:
    deadline = time.monotonic() + timeout
    while True:
        reply = _reply(w, sid)
        if reply is not None and reply.status.value == status:
            return reply
        if time.monotonic() > deadline:
            pytest.fail(f"reply never became {status} (is {reply and reply.status})\n"
                        f"{w.output()}")
        time.sleep(0.1)


def test_a_long_reply_retried_three_times_mid_way_reaches_the_contact_once_per_part(
    world: Any, twilio: FakeTwilioServer
) -> None:
    w: World = world()
    # Part 1 is accepted; part 2 is refused three times with 503 + Retry-After: 1.
    twilio.fail_next(status=503, code=20503, times=3, retry_after="1", after_accepted=1)
    [sid] = w.intake(LONG)
    w.start_worker()
    reply = _wait_for(w, sid, "sent")
    parts = split_text("Echo: " + LONG)
    assert len(parts) == 3
    assert [s.body for s in twilio.sent] == parts, w.output()
    assert reply.provider_sid == twilio.sent[-1].sid
    # The three refusals, then part 2 and 3: each retry waited Retry-After at least.
    attempts = [a for a in twilio.attempts if a.status_code in (201, 503)]
    assert [a.status_code for a in attempts] == [201, 503, 503, 503, 201, 201]
    # Backoff alone would be ~0.1 s here (WORKER_BACKOFF_BASE_SECONDS=0.05).
    gaps = [b.received_at - a.received_at for a, b in pairwise(attempts[1:5])]
    assert all(gap >= 0.9 for gap in gaps), gaps
    time.sleep(1.0)  # room for a wrongly repeated part to show up
    assert len(twilio.sent) == 3


def test_bad_credentials_fail_the_reply_once_without_retries(
    world: Any, twilio: FakeTwilioServer
) -> None:
    w: World = world(TWILIO_AUTH_TOKEN="a-token-twilio-does-not-know")
    [sid] = w.intake("hello")
    w.start_worker()
    reply = _wait_for(w, sid, "failed")
    assert reply.error_code == "20003"
    assert reply.metadata["error"]["outcome"] == "bad_credentials"
    time.sleep(1.0)
    assert len(twilio.attempts) == 1  # no retry storm
    assert '"alert": true' in w.output() or "alert=True" in w.output()


def _intake_media(w: World, sid: str, body: str, media: list[tuple[str, str]]) -> None:
    async def go(container: Any) -> None:
        await container[ReceiveInboundMessage].execute(InboundMessage(
            message_sid=sid, owner_id=w.settings.owner_account_sid, from_address=CONTACT,
            to_address=OUR_NUMBER, body=body, media=tuple(media)))

    w.run(go)


def _inbound(w: World, sid: str) -> Message:
    async def go(container: Any) -> Message:
        async with container[UnitOfWork] as uow:
            found: Message | None = await uow.repository(MessageRepository).get_by_provider_sid(sid)
        assert found is not None
        return found

    result: Message = w.run(go)
    return result


def _blob(w: World, key: str) -> Any:
    async def go(container: Any) -> Any:
        return await container[BlobStore].get(key)

    return w.run(go)


def test_inbound_media_is_downloaded_before_the_reply_and_a_failing_one_blocks_no_other(
    world: Any, twilio: FakeTwilioServer
) -> None:
    w: World = world()
    photo = b"\xff\xd8\xff" + bytes(range(256)) * 100
    # The photo's host fails twice (503): its download is retried with backoff.
    photo_url = twilio.host_media(photo, "image/jpeg", fail_first=2)
    exe_url = twilio.host_media(b"MZ", "application/x-msdownload")
    media_sid, text_sid = "SM" + "1" * 32, "SM" + "2" * 32
    _intake_media(w, media_sid, "look", [(photo_url, "image/jpeg"),
                                          (exe_url, "application/x-msdownload")])
    _intake_media(w, text_sid, "just text", [])
    w.start_worker()
    text_reply = _wait_for(w, text_sid, "sent")
    media_reply = _wait_for(w, media_sid, "sent")
    inbound = _inbound(w, media_sid)
    stored, refused = inbound.metadata["media"]
    assert stored["blob_key"] == f"{inbound.owner_id}/{inbound.id}/0"
    assert "not allowed" in refused["error"] and "blob_key" not in refused
    blob = _blob(w, stored["blob_key"])
    assert blob.data == photo and blob.content_type == "image/jpeg"
    # The reply waited for the download; the text message's did not wait for either.
    assert inbound.updated_at <= media_reply.created_at
    assert text_reply.created_at <= inbound.updated_at
    photo_path = photo_url.removeprefix(twilio.base_url)
    assert [ok for path, ok in twilio.media_requests if path == photo_path] == [True] * 3


def test_an_opted_out_contact_is_not_messaged_again_until_they_write(
    world: Any, twilio: FakeTwilioServer
) -> None:
    from application.errors import ContactBlocked
    from application.use_cases.queue_outbound import OutboundRequest, QueueOutboundMessage

    w: World = world()
    twilio.fail_next(status=400, code=21610, message="Attempt to send to unsubscribed recipient")
    first, second = "SM" + "3" * 32, "SM" + "4" * 32
    _intake_media(w, first, "hello", [])
    worker = w.start_worker()
    refused = _wait_for(w, first, "failed")
    assert refused.error_code == "21610"
    assert refused.metadata["error"]["outcome"] == "opted_out"

    async def operator_send(container: Any) -> Any:
        try:
            await container[QueueOutboundMessage].execute(OutboundRequest(
                owner_id=w.settings.owner_account_sid, channel=OUR_NUMBER, to=CONTACT,
                body="a promotion"))
        except ContactBlocked as exc:
            return exc
        return None

    assert isinstance(w.run(operator_send), ContactBlocked)
    # The contact writes again: replies flow again.
    _intake_media(w, second, "hi again", [])
    _wait_for(w, second, "sent")
    assert [s.body for s in twilio.sent] == ["Echo: hi again"]
    worker.kill()


def test_a_status_callback_before_the_sid_is_recorded_is_applied_once_it_is(
    world: Any, twilio: FakeTwilioServer
) -> None:
    from application.use_cases.record_delivery_status import RecordDeliveryStatus, StatusUpdate

    w: World = world()
    sid = "SM" + "d" * 32
    twilio.next_sids.append(sid)

    async def early_callbacks(container: Any) -> list[bool]:
        record = container[RecordDeliveryStatus]
        # "delivered" and then a stale "sent": forward only, whatever order they land in.
        return [await record.execute(StatusUpdate(sid, "delivered")),
                await record.execute(StatusUpdate(sid, "sent"))]

    assert w.run(early_callbacks) == [False, False]  # no message has that sid yet: kept
    [inbound_sid] = w.intake("hello")
    w.start_worker()
    reply = _wait_for(w, inbound_sid, "delivered")
    assert reply.provider_sid == sid
    time.sleep(3.0)  # the kept "sent" has had its try: it must not move the status back
    assert _reply(w, inbound_sid).status.value == "delivered"  # type: ignore[union-attr]


def test_a_callback_error_code_is_stored_with_its_meaning_and_blocks_the_contact(
    world: Any, twilio: FakeTwilioServer
) -> None:
    from application.errors import ContactBlocked
    from application.use_cases.queue_outbound import OutboundRequest, QueueOutboundMessage
    from application.use_cases.record_delivery_status import RecordDeliveryStatus, StatusUpdate

    w: World = world()
    sid = "SM" + "e" * 32
    twilio.next_sids.append(sid)
    [inbound_sid] = w.intake("hello")
    w.start_worker()
    _wait_for(w, inbound_sid, "sent")

    async def callback_then_operator(container: Any) -> Any:
        changed = await container[RecordDeliveryStatus].execute(
            StatusUpdate(sid, "undelivered", "30003"))
        try:
            await container[QueueOutboundMessage].execute(OutboundRequest(
                owner_id=w.settings.owner_account_sid, channel=OUR_NUMBER, to=CONTACT,
                body="are you there?"))
        except ContactBlocked as exc:
            return changed, exc
        return changed, None

    changed, refused = w.run(callback_then_operator)
    assert changed is True and isinstance(refused, ContactBlocked)
    reply = _reply(w, inbound_sid)
    assert reply is not None and reply.status.value == "undelivered"
    assert reply.error_code == "30003"
    assert reply.metadata["error"] == {"code": "30003", "outcome": "contact_unreachable",
                                       "meaning": "unreachable destination handset"}


@pytest.mark.parametrize("fallback", [True, False])
def test_a_reply_delayed_past_the_window_uses_the_fallback_template_or_fails(
    world: Any, twilio: FakeTwilioServer, fallback: bool
) -> None:
    from tests.fakes.fake_twilio import DEFAULT_TEMPLATE_SID

    # A window of about a second; the worker starts after it closed.
    extra = {"TWILIO_WINDOW_HOURS": "0.0003"}
    if fallback:
        extra["TWILIO_FALLBACK_CONTENT_SID"] = DEFAULT_TEMPLATE_SID
    w: World = world(**extra)
    [sid] = w.intake("hello")
    time.sleep(1.5)
    w.start_worker()
    if fallback:
        reply = _wait_for(w, sid, "sent")
        [sent] = twilio.sent
        assert sent.content_sid == DEFAULT_TEMPLATE_SID and sent.body is None
        assert reply.metadata["template"]["fallback"] is True
    else:
        reply = _wait_for(w, sid, "failed")
        assert reply.error_code == "WINDOW_CLOSED"
        assert twilio.attempts == []  # refused before calling Twilio
