"""A fallback reply shows in the read API as needing a person; ordinary messages do not."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from application.ports.job_queue import JobConsumer
from application.tasks import GenerateReplyPayload
from application.use_cases.generate_reply import GenerateReply
from bootstrap.app import create_app
from bootstrap.cli import migrate
from bootstrap.container import build_container
from tests.adapters.test_internal_api import BASE, KEY, SECRET, Api, bearer
from tests.conftest import MakeSettings
from tests.fakes.fake_llm import DEFAULT_API_KEY, FakeLLMServer


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
async def api(make_settings: MakeSettings, llm: FakeLLMServer) -> AsyncIterator[Api]:
    settings = make_settings(twilio_internal_api_key=KEY, secret_key=SECRET,
                             llm_provider="openai", llm_model_name="m",
                             llm_base_url=llm.base_url, llm_api_key=DEFAULT_API_KEY,
                             assistant_fallback_message="A person will write to you.")
    migrate(settings)
    container = build_container(settings)
    app = create_app(settings, container, embedded_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield Api(client, container, settings)


async def test_the_fallback_reply_reads_needs_person(api: Api, llm: FakeLLMServer) -> None:
    llm.fail_next(status=403, code="model_not_allowed")
    await api.inbound("whatsapp:+5511999990001", "SM" + "1" * 32, body="help")
    [job] = await api.container[JobConsumer].receive(1, 0)
    reply = await api.container[GenerateReply].execute(
        GenerateReplyPayload.from_payload(job.payload))
    assert reply.body == "A person will write to you."

    [conversation] = (await api.client.get("/api/v1/conversations", headers=bearer())
                      ).json()["items"]
    page = (await api.client.get(f"/api/v1/conversations/{conversation['id']}/messages",
                                 headers=bearer())).json()
    flags = {m["direction"]: (m["body"], m["needs_person"]) for m in page["items"]}
    assert flags == {"inbound": ("help", False),
                     "outbound": ("A person will write to you.", True)}
