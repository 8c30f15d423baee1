"""The OpenAI-compatible responder over real sockets, against the fake LLM server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from adapters.openai import OpenAICompatibleResponder
from application.ports.job_queue import JobConsumer
from application.ports.responder import ResponderFailed
from application.tasks import GenerateReplyPayload
from application.use_cases.generate_reply import GenerateReply
from application.use_cases.receive_inbound import InboundMessage, ReceiveInboundMessage
from bootstrap.container import Resources, build_container
from bootstrap.settings import SettingsError, load_settings
from domain.conversation import Conversation, ConversationStatus
from domain.message import DeliveryStatus, Direction, Message, MessageType
from tests.conftest import MakeSettings, free_port
from tests.fakes.fake_llm import DEFAULT_API_KEY, FakeLLMServer

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CONVERSATION = Conversation("C1", "owner", "whatsapp:+5511900000000", "whatsapp:+14155238886",
                            ConversationStatus.OPEN, NOW, NOW, NOW)


def turn(message_id: str, direction: Direction, body: str) -> Message:
    return Message(message_id, "C1", "owner", direction, MessageType.TEXT, body, "a", "b",
                   DeliveryStatus.RECEIVED, NOW, NOW)


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0, connect=1.0)) as http:
        yield http


def responder(client: httpx.AsyncClient, base_url: str, key: str = DEFAULT_API_KEY
              ) -> OpenAICompatibleResponder:
    return OpenAICompatibleResponder(client=client, base_url=base_url, model="test-model",
                                     api_key=key)


async def test_the_conversation_goes_to_the_model_as_chat_turns(
    llm: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    history = [turn("1", Direction.INBOUND, "oi"), turn("2", Direction.OUTBOUND, "olá!"),
               turn("3", Direction.INBOUND, "tudo bem? 👋")]
    text = await responder(client, llm.base_url).reply(CONVERSATION, history[-1], history)
    assert text == "LLM: tudo bem? 👋"
    [request] = llm.requests
    assert request["model"] == "test-model"
    roles = [(m["role"], m["content"]) for m in request["messages"]]
    assert roles[0][0] == "system"
    assert roles[1:] == [("user", "oi"), ("assistant", "olá!"), ("user", "tudo bem? 👋")]


async def test_the_message_is_sent_even_when_history_lacks_it(
    llm: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    message = turn("9", Direction.INBOUND, "only me")
    assert await responder(client, llm.base_url).reply(CONVERSATION, message, []) == \
        "LLM: only me"


@pytest.mark.parametrize(("status", "code", "retryable"), [
    (429, "rate_limit_exceeded", True), (500, None, True), (503, "overloaded", True),
    (400, "context_length_exceeded", False),
])
async def test_failures_are_classified_for_the_retry_policy(
    llm: FakeLLMServer, client: httpx.AsyncClient, status: int, code: str | None,
    retryable: bool,
) -> None:
    llm.fail_next(status=status, code=code)
    with pytest.raises(ResponderFailed) as info:
        await responder(client, llm.base_url).reply(CONVERSATION, turn("1", Direction.INBOUND,
                                                                        "hi"), [])
    assert info.value.retryable is retryable
    assert info.value.error_code == (code or str(status))


async def test_a_wrong_key_is_permanent_and_never_echoed(
    llm: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ResponderFailed) as info:
        await responder(client, llm.base_url, key="sk-wrong-secret").reply(
            CONVERSATION, turn("1", Direction.INBOUND, "hi"), [])
    assert not info.value.retryable and info.value.error_code == "invalid_api_key"
    assert "sk-wrong-secret" not in str(info.value)
    assert "sk-wrong-secret" not in repr(responder(client, llm.base_url, "sk-wrong-secret"))


async def test_unreachable_slow_or_empty_answers_are_retryable(
    llm: FakeLLMServer, client: httpx.AsyncClient
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ResponderFailed) as unreachable:
        await responder(client, closed).reply(CONVERSATION, turn("1", Direction.INBOUND, "x"), [])
    assert unreachable.value.retryable
    llm.replies.append("   ")
    with pytest.raises(ResponderFailed) as empty:
        await responder(client, llm.base_url).reply(CONVERSATION,
                                                    turn("1", Direction.INBOUND, "x"), [])
    assert empty.value.retryable


async def test_llm_provider_openai_replies_through_the_container(
    llm: FakeLLMServer, make_settings: MakeSettings
) -> None:
    settings = make_settings(database_backend="memory", queue_backend="memory",
                             llm_provider="openai", llm_model_name="test-model",
                             llm_base_url=llm.base_url, llm_api_key=DEFAULT_API_KEY)
    container = build_container(settings)
    try:
        received = await container[ReceiveInboundMessage].execute(InboundMessage(
            "SM" + "1" * 32, "owner", "whatsapp:+5511900000000", "whatsapp:+14155238886",
            "what's up?"))
        [job] = await container[JobConsumer].receive(1, 0)
        assert job.payload["message_id"] == received.message_id
        reply = await container[GenerateReply].execute(
            GenerateReplyPayload(received.message_id))
        assert reply.body == "LLM: what's up?"
        assert reply.reply_to_id == received.message_id
    finally:
        await container[Resources].aclose()


def test_openai_without_a_model_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLM_PROVIDER", "openai")
    with pytest.raises(SettingsError, match="LLM_MODEL_NAME"):
        load_settings(env_file=None)


def test_a_model_timeout_not_below_the_job_timeout_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {"LLM_PROVIDER": "openai", "LLM_MODEL_NAME": "m",
                        "LLM_TIMEOUT_SECONDS": "60", "WORKER_JOB_TIMEOUT_SECONDS": "60"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match="LLM_TIMEOUT_SECONDS must be below"):
        load_settings(env_file=None)
    monkeypatch.setenv("WORKER_JOB_TIMEOUT_SECONDS", "61")
    assert load_settings(env_file=None).llm_timeout_seconds == 60
