"""A voice note end to end: downloaded from (fake) Twilio, uploaded to the fake LLM's
``/v1/audio/transcriptions``, and answered from its transcript, by a worker process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from application.use_cases.receive_inbound import InboundMessage, ReceiveInboundMessage
from domain.message import Message
from tests.e2e.model_world import BACKENDS, model_world
from tests.e2e.test_worker_process import CONTACT, OUR_NUMBER, World
from tests.fakes.fake_llm import FakeLLMServer
from tests.fakes.fake_twilio import FakeTwilioServer

pytestmark = pytest.mark.e2e

OGG = b"OggS\x00\x02" + bytes(range(256)) * 8  # what the upload must carry, byte for byte


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path, llm: FakeLLMServer,
          twilio: FakeTwilioServer) -> Iterator[World]:
    yield from model_world(
        request, tmp_path, llm, twilio, LLM_MODEL_NAME="chat-m",
        LLM_TRANSCRIPTION_ENABLED="true", LLM_TRANSCRIPTION_MODEL="whisper-x",
        TWILIO_MEDIA_DIR=str(tmp_path / "media"))


def intake(w: World, sid: str, media: list[tuple[str, str]], body: str = "") -> None:
    async def go(container: Any) -> None:
        await container[ReceiveInboundMessage].execute(InboundMessage(
            message_sid=sid, owner_id=w.settings.owner_account_sid, from_address=CONTACT,
            to_address=OUR_NUMBER, body=body, media=tuple(media)))

    w.run(go)


def inbound(w: World, sid: str) -> Message:
    async def go(container: Any) -> Message:
        async with container[UnitOfWork] as uow:
            found = await uow.repository(MessageRepository).get_by_provider_sid(sid)
        assert found is not None
        return found

    result: Message = w.run(go)
    return result


def test_a_voice_note_is_downloaded_transcribed_and_answered_from_the_transcript(
    world: World, llm: FakeLLMServer, twilio: FakeTwilioServer
) -> None:
    llm.transcripts.append("what time do you open tomorrow")
    url = twilio.host_media(OGG, "audio/ogg")
    sid = "SM" + "7" * 32
    intake(world, sid, [(url, "audio/ogg")])
    try:
        twilio.wait_for_sends(1, timeout=40)
    except TimeoutError:
        pytest.fail(world.output())
    time.sleep(0.5)

    [upload] = llm.transcriptions
    assert upload.data == OGG and upload.model == "whisper-x"
    assert upload.content_type == "audio/ogg" and upload.filename.endswith(".ogg")
    [chat] = llm.requests
    assert chat["messages"][-1] == {"role": "user", "content": "what time do you open tomorrow"}
    assert [s.body for s in twilio.sent] == ["LLM: what time do you open tomorrow"]
    stored = inbound(world, sid)
    assert stored.metadata["transcript"] == "what time do you open tomorrow"
    assert stored.metadata["media"][0]["transcript"] == "what time do you open tomorrow"


def test_a_failing_transcription_still_gets_a_reply(
    world: World, llm: FakeLLMServer, twilio: FakeTwilioServer
) -> None:
    # The fake answers 401 to a wrong key: a permanent failure, recorded, not retried.
    llm.api_key = "another-key"
    url = twilio.host_media(OGG, "audio/ogg")
    sid = "SM" + "8" * 32
    intake(world, sid, [(url, "audio/ogg")], body="listen")
    try:
        twilio.wait_for_sends(1, timeout=40)
    except TimeoutError:
        pytest.fail(world.output())
    stored = inbound(world, sid)
    assert "transcript_error" in stored.metadata["media"][0]
    assert "transcript" not in stored.metadata
