"""Each owner's assistant settings reach the model: the identity module's stored profile
(prompt, model, temperature, whether the assistant answers) as the fake model server
receives it, beside the deployment's settings for an owner that sets none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import MakeSettings
from tests.fakes.fake_llm import DEFAULT_API_KEY, FakeLLMServer
from tests.fakes.fake_twilio import FakeTwilioServer
from tests.modules.identity.world import A, B, two_owners


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


def _system(request: dict[str, object]) -> str:
    messages = request["messages"]
    assert isinstance(messages, list)
    return str(messages[0]["content"]) if messages[0]["role"] == "system" else ""


async def test_each_owners_prompt_and_model_reach_the_model(
    make_settings: MakeSettings, twilio: FakeTwilioServer, llm: FakeLLMServer
) -> None:
    async with two_owners(make_settings, twilio, llm_provider="openai",
                          llm_model_name="deployment-model", llm_base_url=llm.base_url,
                          llm_api_key=DEFAULT_API_KEY,
                          llm_system_prompt="The deployment's prompt.") as world:
        await world.store.update(B.owner_id, system_prompt="You answer for shop B.",
                                 model="model-of-b", temperature=0.1)
        assert (await world.as_tenant(A, body="question to a")).status_code == 200
        assert (await world.as_tenant(B, body="question to b")).status_code == 200
        await world.run_jobs()
        by_question = {str(r["messages"][-1]["content"]): r for r in llm.requests}
        to_a, to_b = by_question["question to a"], by_question["question to b"]
        assert (to_a["model"], _system(to_a)) == ("deployment-model", "The deployment's prompt.")
        assert (to_b["model"], to_b.get("temperature")) == ("model-of-b", 0.1)
        assert _system(to_b).startswith("You answer for shop B.")
        assert {s.body for s in twilio.sent} == {"LLM: question to a", "LLM: question to b"}


async def test_an_owner_whose_assistant_is_off_gets_no_reply_and_no_model_call(
    make_settings: MakeSettings, twilio: FakeTwilioServer, llm: FakeLLMServer
) -> None:
    async with two_owners(make_settings, twilio, llm_provider="openai",
                          llm_model_name="deployment-model", llm_base_url=llm.base_url,
                          llm_api_key=DEFAULT_API_KEY) as world:
        await world.store.update(B.owner_id, answers=False)
        assert (await world.as_tenant(A, body="to a")).status_code == 200
        assert (await world.as_tenant(B, body="to b")).status_code == 200
        await world.run_jobs()
        assert [str(r["messages"][-1]["content"]) for r in llm.requests] == ["to a"]
        assert [s.body for s in twilio.sent] == ["LLM: to a"]
        assert await world.stored_messages() == 4  # B's inbound is stored, its stand-in too


async def test_an_owners_own_fallback_message_answers_a_permanent_model_error(
    make_settings: MakeSettings, twilio: FakeTwilioServer, llm: FakeLLMServer
) -> None:
    async with two_owners(make_settings, twilio, llm_provider="openai",
                          llm_model_name="deployment-model", llm_base_url=llm.base_url,
                          llm_api_key=DEFAULT_API_KEY) as world:
        await world.store.update(B.owner_id, fallback_message="Shop B will call you back.")
        llm.fail_next(status=400, code="invalid_request_error")
        assert (await world.as_tenant(B, body="to b")).status_code == 200
        await world.run_jobs()
        assert [s.body for s in twilio.sent] == ["Shop B will call you back."]
        assert llm.attempts == 1  # permanent: not retried
