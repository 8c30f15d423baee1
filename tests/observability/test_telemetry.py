"""Exporter selection, and the wrappers that carry a trace across the queue and to HTTP."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import structlog
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import SpanKind, StatusCode

from adapters.in_memory.job_queue import InMemoryJobQueue
from adapters.observability.httpx_transport import TracingTransport
from adapters.observability.job_queue import TracingJobQueue
from adapters.observability.jobs import observe_job
from adapters.observability.metrics import QueueGauges
from adapters.observability.sender import ObservedMessageSender
from adapters.twilio.sender import TwilioMessageSender
from application.errors import DeliveryFailed, PermanentJobError
from application.ports.job_queue import Job
from application.ports.message_sender import OutboundEnvelope
from bootstrap.app import create_app
from bootstrap.migrator import migrate
from bootstrap.telemetry import Telemetry, build_telemetry
from tests.conftest import MakeSettings
from tests.observability.conftest import Recorded


class _Sink(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def otlp_sink() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """An OTLP/HTTP collector stand-in on loopback: records what it is sent."""
    received: list[tuple[str, str, bytes]] = []
    handler = type("Sink", (_Sink,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_otlp_endpoint_exports_traces_and_metrics_named_for_the_service(
    make_settings: MakeSettings, otlp_sink: tuple[str, list[tuple[str, str, bytes]]]
) -> None:
    endpoint, received = otlp_sink
    settings = make_settings(otel_exporter_otlp_endpoint=endpoint, otel_service_name="story-svc")
    telemetry = build_telemetry(settings)
    assert telemetry.exporting and telemetry.exporters == ("otlp",)
    with telemetry.tracer.start_as_current_span("work"):
        telemetry.instruments.job_runs.add(1, {"task": "t", "outcome": "success"})
    telemetry.shutdown()  # flushes both exporters
    paths = {path for path, _, _ in received}
    assert paths == {"/v1/traces", "/v1/metrics"}
    assert all(ctype == "application/x-protobuf" for _, ctype, _ in received)
    assert all(b"story-svc" in body for _, _, body in received)


async def test_without_an_endpoint_nothing_exports_and_start_up_is_silent(
    make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings()
    migrate(settings, configure_logger=False)  # an unmigrated database is worth an error line
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        app = create_app(settings, embedded_worker=False)
        telemetry = app.state.container[Telemetry]
        async with app.router.lifespan_context(app):
            with telemetry.tracer.start_as_current_span("unsampled") as span:
                assert not span.is_recording()
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert not telemetry.exporting and telemetry.exporters == ()
    # Nothing would read a measurement: the meter is the API's no-op, not an SDK one.
    assert isinstance(telemetry.meter_provider, NoOpMeterProvider)


async def test_enqueue_carries_trace_and_log_context_and_the_job_span_is_its_child(
    recorded: Recorded,
) -> None:
    inner = InMemoryJobQueue(max_attempts=3)
    queue = TracingJobQueue(inner, recorded.telemetry.tracer)
    tracer = recorded.telemetry.tracer
    with structlog.contextvars.bound_contextvars(
        owner_id="AC1", conversation_id="C1", correlation_id="from-context"
    ), tracer.start_as_current_span("request"):
        await queue.enqueue("t", {"n": 1}, headers={"correlation_id": "SM1"})
    [job] = await inner.receive(1, 0)
    assert job.headers["correlation_id"] == "SM1"  # the caller's header wins
    assert (job.headers["owner_id"], job.headers["conversation_id"]) == ("AC1", "C1")
    assert job.headers["traceparent"].startswith("00-")

    seen: dict[str, Any] = {}

    async def handler(job: Job) -> None:
        seen.update(structlog.contextvars.get_contextvars())

    structlog.contextvars.bind_contextvars(request_id="stale")
    await observe_job(handler, tracer, recorded.telemetry.instruments)(job)
    assert seen == {"job_id": job.id, "task": "t", "attempt": 1, "correlation_id": "SM1",
                    "owner_id": "AC1", "conversation_id": "C1"}
    assert structlog.contextvars.get_contextvars() == {"request_id": "stale"}  # restored
    structlog.contextvars.clear_contextvars()
    spans = {s.name: s for s in recorded.finished()}
    producer, consumer = spans["send t"], spans["process t"]
    assert producer.kind is SpanKind.PRODUCER and consumer.kind is SpanKind.CONSUMER
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == spans["request"].context.trace_id


def _job(attempt: int, max_attempts: int = 3) -> Job:
    from datetime import UTC, datetime

    return Job("j1", "t", {}, attempt, max_attempts, datetime.now(UTC))


@pytest.mark.parametrize(
    ("error", "attempt", "outcome"),
    [(RuntimeError("x"), 1, "retry"), (RuntimeError("x"), 3, "dead_letter"),
     (PermanentJobError("gone"), 1, "dead_letter")],
)
async def test_failed_runs_are_counted_by_outcome_and_marked_on_the_span(
    recorded: Recorded, error: Exception, attempt: int, outcome: str
) -> None:
    async def handler(job: Job) -> None:
        raise error

    wrapped = observe_job(handler, recorded.telemetry.tracer, recorded.telemetry.instruments)
    with pytest.raises(type(error)):
        await wrapped(_job(attempt))
    [point] = recorded.points("wta.job.runs")
    assert dict(point.attributes) == {"task": "t", "outcome": outcome} and point.value == 1
    [span] = recorded.finished()
    assert span.status.status_code is StatusCode.ERROR


async def test_outbound_http_is_a_client_span_whose_context_is_sent(recorded: Recorded) -> None:
    sent: list[httpx.Request] = []

    def twilio(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(400, json={"code": 21211, "message": "invalid 'To'"})

    transport = TracingTransport(httpx.MockTransport(twilio), recorded.telemetry.tracer)
    async with httpx.AsyncClient(transport=transport) as client:
        sender = ObservedMessageSender(
            TwilioMessageSender(account_sid="AC1", auth_token="tok" * 11, client=client,
                                base_url="https://api.twilio.test"),
            recorded.telemetry.tracer, recorded.telemetry.instruments, "twilio")
        with pytest.raises(DeliveryFailed):
            await sender.send(OutboundEnvelope("AC1", "whatsapp:+14155238886",
                                               "whatsapp:+5511999990000", "hi"))
    spans = {s.kind: s for s in recorded.finished()}
    client_span = spans[SpanKind.CLIENT]
    trace_id, span_id = (format(client_span.context.trace_id, "032x"),
                         format(client_span.context.span_id, "016x"))
    version, sent_trace, sent_span, flags = sent[0].headers["traceparent"].split("-")
    assert (version, sent_trace, sent_span) == ("00", trace_id, span_id)
    assert int(flags, 16) & 1  # sampled
    assert client_span.status.status_code is StatusCode.ERROR
    assert client_span.attributes is not None
    assert "tok" not in str(client_span.attributes["url.full"])
    [failure] = recorded.points("wta.send.failures")
    assert dict(failure.attributes) == {"provider": "twilio", "error_code": "21211",
                                        "kind": "refused"}


async def test_queue_gauges_report_the_latest_sample_only(recorded: Recorded) -> None:
    queue = InMemoryJobQueue(max_attempts=1)
    gauges = QueueGauges(recorded.telemetry.meter, queue.depth, queue.dead_count)
    assert recorded.points("wta.queue.depth") == []  # nothing sampled yet: nothing reported
    await queue.enqueue("t", {})
    await queue.enqueue("t", {})
    [job, _] = await queue.receive(2, 0)
    await queue.dead_letter(job, "boom")
    await gauges.sample()
    [depth] = recorded.points("wta.queue.depth")
    [dead] = recorded.points("wta.queue.dead_letters")
    assert (depth.value, dead.value) == (1, 1)
