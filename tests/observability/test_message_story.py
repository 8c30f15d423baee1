"""One inbound message, followed through the API, the queue and the worker to Twilio: one
trace from the request span to the Twilio send span, and one correlation id in the logs.

In process: the ASGI app with its lifespan, then a burst worker (the project's runner on
SQLite, arq's own Worker on Redis), both built from the same container.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from bootstrap.app import create_app
from bootstrap.cli import migrate
from bootstrap.container import build_container
from bootstrap.simulate import inbound_params, sign
from bootstrap.worker import build_runner
from tests.conftest import MakeSettings
from tests.fakes.fake_twilio import FakeTwilioServer
from tests.observability.conftest import LogCapture, Recorded

INBOUND = "/channels/twilio/v1/webhooks/inbound"
BASE = "http://testserver"
CONTACT = "whatsapp:+5511988887777"
SID = "SM" + "7" * 32

# From the Twilio call back to the webhook request, each span the parent of the one before.
# The worker sends the reply in the job that generated it (no send_message job).
CHAIN = [
    "POST", "twilio send", "GenerateReply", "process generate_reply", "send generate_reply",
    "ReceiveInboundMessage", f"POST {INBOUND}",
]


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


@pytest.fixture
async def arq_redis(redis_url: str) -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    yield redis_url
    await client.flushdb()
    await client.aclose()


async def drive_one_message(
    make_settings: MakeSettings, recorded: Recorded, logs: LogCapture,
    twilio: FakeTwilioServer, **overrides: Any,
) -> None:
    settings = make_settings(
        twilio_account_sid=twilio.account_sid, twilio_auth_token=twilio.auth_token,
        twilio_api_base_url=twilio.base_url, log_format="json",
        worker_sweep_interval_seconds=0, **overrides,
    )
    migrate(settings)  # first: Alembic's env.py re-configures logging from alembic.ini
    logs.configure(settings)
    container = build_container(settings, recorded.telemetry)
    app = create_app(settings, container, embedded_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            params = inbound_params(settings, "hello", CONTACT, SID)
            response = await client.post(INBOUND, data=params, headers={
                "X-Twilio-Signature": sign(settings, f"{BASE}{INBOUND}", params)})
        assert response.status_code == 200, response.text
        await run_worker_until_idle(container, settings)
    [sent] = twilio.sent
    assert sent.body == "Echo: hello"


async def run_worker_until_idle(container: Any, settings: Any) -> None:
    if settings.queue_backend == "arq":
        from arq.worker import create_worker

        from bootstrap.worker import arq_worker_settings

        worker = create_worker(arq_worker_settings(settings, container), handle_signals=False,
                               burst=True, poll_delay=0.01)
        try:
            await worker.main()
        finally:
            await worker.close()
        return
    await build_runner(container, settings).run(burst=True)  # type: ignore[call-arg]


def assert_one_trace_from_request_to_twilio(spans: list[ReadableSpan]) -> None:
    assert len({s.context.trace_id for s in spans}) == 1, [(s.name, s.context) for s in spans]
    by_id = {s.context.span_id: s for s in spans}
    [client] = [s for s in spans if s.kind is SpanKind.CLIENT]
    chain, span = [], client
    while span is not None:
        chain.append(span.name)
        span = by_id.get(span.parent.span_id) if span.parent else None
    assert chain == CHAIN
    server = by_id[next(s.context.span_id for s in spans if s.kind is SpanKind.SERVER)]
    assert server.parent is None  # Twilio's request starts the trace
    assert client.attributes is not None
    assert client.attributes["http.response.status_code"] == 201


def assert_one_log_story(logs: LogCapture, trace_id: int) -> None:
    story = [line for line in logs.lines() if line.get("correlation_id") == SID]
    # The webhook is one line, its access line, carrying what became of the message.
    webhook = [line for line in story if line["logger"] == "wta.access"]
    jobs = [line for line in story if str(line["event"]).startswith("job ")]
    assert len(webhook) == 1 and webhook[0]["request_id"] and webhook[0]["owner_id"]
    assert webhook[0]["inbound"] == "stored" and webhook[0]["reply_queued"] is True
    assert webhook[0]["status_code"] == 200 and f'"POST {INBOUND} HTTP/1.1" 200' in \
        webhook[0]["event"]
    assert [line for line in logs.lines() if line["logger"] == "wta.access"] == webhook
    conversation = webhook[0]["conversation_id"]
    assert [line["task"] for line in jobs] == ["generate_reply"]
    for line in jobs:
        assert line["outcome"] == "success" and line["attempt"] == 1 and line["job_id"]
        assert line["conversation_id"] == conversation
        assert line["owner_id"] == webhook[0]["owner_id"]
        assert "request_id" not in line  # a worker line never carries a stale request id
    traced = {line["trace_id"] for line in story if "trace_id" in line}
    assert traced == {format(trace_id, "032x")}


def assert_metrics(recorded: Recorded) -> None:
    [webhook] = recorded.points("wta.webhook.requests")
    assert webhook.value == 1 and webhook.attributes["outcome"] == "accepted"
    runs = {(p.attributes["task"], p.attributes["outcome"]): p.value
            for p in recorded.points("wta.job.runs")}
    assert runs == {("generate_reply", "success"): 1}
    assert sum(p.count for p in recorded.points("wta.job.latency")) == 1


async def test_sqlite_queue_one_trace_and_one_log_story(
    make_settings: MakeSettings, recorded: Recorded, logs: LogCapture, twilio: FakeTwilioServer
) -> None:
    await drive_one_message(make_settings, recorded, logs, twilio, queue_backend="sqlite")
    spans = recorded.finished()
    assert_one_trace_from_request_to_twilio(spans)
    assert_one_log_story(logs, spans[0].context.trace_id)
    assert_metrics(recorded)


@pytest.mark.integration
async def test_arq_queue_one_trace_and_one_log_story(
    make_settings: MakeSettings, recorded: Recorded, logs: LogCapture, twilio: FakeTwilioServer,
    arq_redis: str,
) -> None:
    await drive_one_message(make_settings, recorded, logs, twilio, queue_backend="arq",
                            queue_redis_url=arq_redis)
    spans = recorded.finished()
    assert_one_trace_from_request_to_twilio(spans)
    assert_one_log_story(logs, spans[0].context.trace_id)
    assert_metrics(recorded)
