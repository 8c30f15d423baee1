"""Images on the reply path, against the fake LLM server: image parts for a model that
can see, an "unsupported" reply (and no model call) for one that cannot."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from lagom import Container

from application.identity.store import OwnerStore
from application.ports.blob_store import BlobStore
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from application.tasks import GenerateReplyPayload
from application.use_cases.generate_reply import GenerateReply
from application.use_cases.receive_inbound import InboundMessage, ReceiveInboundMessage
from application.use_cases.reply_media import UNSUPPORTED_IMAGE
from bootstrap.container import Resources, build_container
from bootstrap.modules.identity import MODULE as IDENTITY
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.settings import Settings
from tests.conftest import MakeSettings
from tests.fakes.fake_llm import DEFAULT_API_KEY, FakeLLMServer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(params=[True, False], ids=["vision", "no-vision"])
async def container(request: pytest.FixtureRequest, llm: FakeLLMServer, tmp_path: Path,
                    make_settings: MakeSettings) -> AsyncIterator[Container]:
    settings = make_settings(database_backend="memory", queue_backend="memory",
                             llm_provider="openai", llm_model_name="vision-model",
                             llm_base_url=llm.base_url, llm_api_key=DEFAULT_API_KEY,
                             llm_vision=request.param, twilio_media_dir=str(tmp_path))
    built = build_container(settings)
    yield built
    await built[Resources].aclose()


async def photo_message(c: Container, body: str) -> str:
    """An inbound message whose image the download job has stored."""
    received = await c[ReceiveInboundMessage].execute(InboundMessage(
        "SM" + "6" * 32, "owner", "whatsapp:+5511900000000", "whatsapp:+14155238886", body,
        media=(("https://api.twilio.com/media/ME1", "image/png"),)))
    key = f"owner/{received.message_id}/0"
    await c[BlobStore].put(key, PNG, "image/png")
    async with c[UnitOfWork] as uow:
        messages = uow.repository(MessageRepository)
        stored = await messages.get_by_id(received.message_id)
        assert stored is not None
        media = [{**stored.metadata["media"][0], "blob_key": key, "stored_type": "image/png"}]
        await messages.update(replace(stored, metadata={**stored.metadata, "media": media}))
        await uow.commit()
    return received.message_id


async def test_an_image_goes_to_the_model_only_when_it_can_see(
    container: Container, llm: FakeLLMServer
) -> None:
    message_id = await photo_message(container, "what is this?")
    reply: Any = await container[GenerateReply].execute(GenerateReplyPayload(message_id))

    if not container[Settings].llm_vision:
        assert llm.requests == []  # the model is not asked about a picture it cannot see
        assert reply.body == UNSUPPORTED_IMAGE
        assert reply.metadata["unsupported"] == "image"
        return
    [request] = llm.requests
    parts = request["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "what is this?"}
    url = parts[1]["image_url"]["url"]
    assert url == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert reply.body == "LLM: what is this? [1 image(s): image/png]"


@pytest.mark.parametrize(("deployment", "owner"), [(False, True), (True, False)])
async def test_the_owners_own_vision_choice_overrides_the_deployments(
    deployment: bool, owner: bool, llm: FakeLLMServer, tmp_path: Path,
    make_settings: MakeSettings
) -> None:
    settings = make_settings(database_backend="memory", queue_backend="memory",
                             llm_provider="openai", llm_model_name="vision-model",
                             llm_base_url=llm.base_url, llm_api_key=DEFAULT_API_KEY,
                             llm_vision=deployment, twilio_media_dir=str(tmp_path))
    c = build_container(settings, modules=[WHATSAPP, IDENTITY])
    try:
        await c[OwnerStore].add(name="Shop", account_sid="AC" + "c" * 32,
                                auth_token="token-of-the-shop", owner_id="owner")
        await c[OwnerStore].update("owner", vision=owner)
        reply: Any = await c[GenerateReply].execute(
            GenerateReplyPayload(await photo_message(c, "and this?")))
    finally:
        await c[Resources].aclose()
    if owner:
        [request] = llm.requests
        assert request["messages"][-1]["content"][1]["type"] == "image_url"
    else:
        assert (llm.requests, reply.body) == ([], UNSUPPORTED_IMAGE)


async def test_no_owner_can_turn_vision_on_for_a_model_that_takes_no_images(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    settings = make_settings(database_backend="memory", queue_backend="memory",
                             llm_provider="echo", twilio_media_dir=str(tmp_path))
    c = build_container(settings, modules=[WHATSAPP, IDENTITY])
    try:
        await c[OwnerStore].add(name="Shop", account_sid="AC" + "c" * 32,
                                auth_token="token-of-the-shop", owner_id="owner", vision=True)
        reply: Any = await c[GenerateReply].execute(
            GenerateReplyPayload(await photo_message(c, "and this?")))
    finally:
        await c[Resources].aclose()
    assert reply.body == UNSUPPORTED_IMAGE
