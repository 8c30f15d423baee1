"""Per-owner assistant profiles on the reply path, asserted at the fake LLM server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from lagom import Container

from application.policy import AssistantPolicy
from application.ports.assistant_profiles import AssistantProfile
from application.ports.clock import Clock
from application.ports.id_generator import IdGenerator
from application.ports.job_queue import JobQueue
from application.ports.responder import Responder
from application.ports.unit_of_work import UnitOfWork
from application.tasks import GenerateReplyPayload
from application.use_cases.generate_reply import GenerateReply
from application.use_cases.receive_inbound import InboundMessage, ReceiveInboundMessage
from bootstrap.container import Resources, build_container
from tests.conftest import MakeSettings
from tests.fakes.fake_llm import DEFAULT_API_KEY, FakeLLMServer

CHANNEL = "whatsapp:+14155238886"
PROFILES = {
    "owner-bakery": AssistantProfile(system_prompt="You sell bread.", model="small-model",
                                     temperature=0.2, reply_language="Portuguese",
                                     fallback_message="Volto já!"),
    "owner-garage": AssistantProfile(system_prompt="You fix cars.", model="big-model"),
    "owner-silent": AssistantProfile(answers=False),
}


class ByOwner:
    async def for_owner(self, owner_id: str) -> AssistantProfile:
        return PROFILES.get(owner_id, AssistantProfile())


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
async def container(llm: FakeLLMServer, make_settings: MakeSettings
                    ) -> AsyncIterator[Container]:
    settings = make_settings(database_backend="memory", queue_backend="memory",
                             llm_provider="openai", llm_model_name="deployment-model",
                             llm_system_prompt="The deployment's prompt.",
                             llm_base_url=llm.base_url, llm_api_key=DEFAULT_API_KEY)
    built = build_container(settings)
    yield built
    await built[Resources].aclose()


async def ask(c: Container, owner: str, sid: str, text: str) -> Any:
    received = await c[ReceiveInboundMessage].execute(InboundMessage(
        sid, owner, "whatsapp:+5511900000000", CHANNEL, text))
    generate = GenerateReply(c[UnitOfWork], c[Responder], c[JobQueue], c[Clock],
                             c[IdGenerator], c[AssistantPolicy], profiles=ByOwner())
    return await generate.execute(GenerateReplyPayload(received.message_id))


async def test_each_owner_gets_its_own_prompt_model_and_temperature(
    container: Container, llm: FakeLLMServer
) -> None:
    await ask(container, "owner-bakery", "SM" + "1" * 32, "pão?")
    await ask(container, "owner-garage", "SM" + "2" * 32, "brakes?")
    await ask(container, "owner-plain", "SM" + "3" * 32, "hi")

    bakery, garage, plain = llm.requests
    assert bakery["model"] == "small-model" and bakery["temperature"] == 0.2
    assert bakery["messages"][0]["content"] == (
        "You sell bread.\nAlways reply in Portuguese.")
    assert garage["model"] == "big-model" and "temperature" not in garage
    assert garage["messages"][0]["content"] == "You fix cars."
    assert plain["model"] == "deployment-model"
    assert plain["messages"][0]["content"] == "The deployment's prompt."


async def test_the_owners_fallback_message_and_an_owner_that_does_not_answer(
    container: Container, llm: FakeLLMServer
) -> None:
    llm.fail_next(status=400, code="bad")
    fallback = await ask(container, "owner-bakery", "SM" + "4" * 32, "pão?")
    assert fallback.body == "Volto já!" and fallback.metadata["needs_person"] is True

    silent = await ask(container, "owner-silent", "SM" + "5" * 32, "hello?")
    assert silent.metadata == {"skipped": "assistant_off"}
    assert llm.attempts == 1  # the silent owner's message never reached the model
