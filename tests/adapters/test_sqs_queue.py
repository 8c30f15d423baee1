"""SqsJobQueue against moto's SQS server on loopback: the contract, then what SQS adds."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.sqs import SqsJobQueue
from adapters.sqs.client import SqsClient
from adapters.sqs.job_queue import _deferrals
from adapters.worker.runner import RunnerConfig, WorkerRunner
from application.errors import PayloadTooLarge, QueueUnavailable
from application.ports.job_queue import DeadLetterStore, Job, JobConsumer, JobQueue
from bootstrap.container import Resources, build_container
from tests.contracts.job_queue import JobQueueContract
from tests.contracts.worker import MAX_ATTEMPTS, RunnerHarness, WorkerContract
from tests.fakes.moto_sqs import (  # noqa: F401 - moto_sqs is a fixture
    MotoSqs,
    moto_sqs,
    queue_options,
    start_moto,
)

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

MakeQueue = Callable[..., SqsJobQueue]


@pytest.fixture
async def open_sqs_queue(moto_sqs: MotoSqs) -> AsyncIterator[Callable[..., SqsJobQueue]]:  # noqa: F811
    """``open(url, dlq_url, **options)``: an SqsJobQueue on moto, closed at teardown."""
    made: list[SqsJobQueue] = []

    def make(url: str, dlq_url: str, **options: Any) -> SqsJobQueue:
        options.pop("poll_interval", None)  # SQS long-polls; there is no poll interval
        options.setdefault("confirm_empty_seconds", 0)
        queue = SqsJobQueue(url, dead_letter_queue_url=dlq_url, **queue_options(moto_sqs),
                            **options)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        await queue.close()


class TestSqsFifoJobQueue(JobQueueContract):
    @pytest.fixture
    def make_queue(self, open_sqs_queue: MakeQueue, moto_sqs: MotoSqs) -> MakeQueue:  # noqa: F811
        return lambda **options: open_sqs_queue(*moto_sqs.create_queues(fifo=True), **options)


class TestSqsStandardJobQueue(JobQueueContract):
    @pytest.fixture
    def make_queue(self, open_sqs_queue: MakeQueue, moto_sqs: MotoSqs) -> MakeQueue:  # noqa: F811
        return lambda **options: open_sqs_queue(*moto_sqs.create_queues(fifo=False), **options)


class TestSqsWorker(WorkerContract):
    @pytest.fixture
    def harness(self, open_sqs_queue: MakeQueue, moto_sqs: MotoSqs) -> RunnerHarness:  # noqa: F811
        queue = open_sqs_queue(*moto_sqs.create_queues(fifo=True), max_attempts=MAX_ATTEMPTS,
                               visibility_timeout=2)
        return RunnerHarness(queue)


# -- what only SQS shows ------------------------------------------------------------------

FAST = RunnerConfig(concurrency=2, job_timeout=10.0, backoff_base=0.0, backoff_max=0.0,
                    shutdown_grace=2.0, receive_wait=0.05)


@pytest.fixture
def fifo(open_sqs_queue: MakeQueue, moto_sqs: MotoSqs) -> Callable[..., SqsJobQueue]:  # noqa: F811
    """``fifo(**options)``: a queue on one fresh FIFO queue (each call: another consumer)."""
    urls = moto_sqs.create_queues(fifo=True)
    return lambda **options: open_sqs_queue(*urls, **options)


async def received_raw(moto: MotoSqs, url: str) -> list[dict[str, Any]]:
    response = await asyncio.to_thread(
        moto.client().receive_message, QueueUrl=url, MaxNumberOfMessages=10,
        VisibilityTimeout=0, MessageAttributeNames=["All"],
    )
    return list(response.get("Messages", []))


async def test_headers_travel_as_message_attributes_and_dead_letters_carry_the_error(
    fifo: MakeQueue, moto_sqs: MotoSqs,  # noqa: F811
) -> None:
    queue = fifo(max_attempts=2)
    headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
               "correlation_id": "SM1"}
    await queue.enqueue("t", {"n": 1}, headers=headers)
    [message] = await received_raw(moto_sqs, queue.queue_url)
    attributes = message["MessageAttributes"]
    assert {k: v["StringValue"] for k, v in attributes.items()} == headers

    [job] = await queue.receive(1, 0)
    assert dict(job.headers) == headers
    assert job.attempt == 2  # the peek above was a receive too, as it is on SQS
    await queue.dead_letter(job, "RuntimeError: " + "x" * 5000)
    [dead] = await received_raw(moto_sqs, queue._dead.url)
    attributes = dead["MessageAttributes"]
    assert attributes["wta-attempts"]["StringValue"] == "2"
    assert attributes["wta-last-error"]["StringValue"] == "RuntimeError: " + "x" * 5000
    assert attributes["traceparent"]["StringValue"] == headers["traceparent"]


async def test_the_error_of_a_dead_letter_is_cut_to_fit_the_message_limit(
    fifo: MakeQueue,
) -> None:
    queue = fifo()
    body = "x" * (queue.max_payload_bytes - 2048)
    await queue.enqueue("big", {"body": body})
    [job] = await queue.receive(1, 0)
    await queue.dead_letter(job, "E" * 10_000)
    [dead] = await queue.list_dead()
    assert dead.payload == {"body": body}
    assert dead.last_error.startswith("EEE") and dead.last_error.endswith("...")
    assert len(dead.last_error) < 2048


async def test_payload_too_large_names_the_size_and_the_limit(fifo: MakeQueue) -> None:
    queue = fifo(max_payload_bytes=4096)
    await queue.enqueue("t", {"body": "y" * 3500})
    with pytest.raises(PayloadTooLarge, match=r"task 't' makes a \d+-byte SQS message.*4096"):
        await queue.enqueue("t", {"body": "é" * 2048})
    assert await queue.depth() == 1


async def test_fifo_drops_a_duplicate_key_sent_by_another_process(
    open_sqs_queue: MakeQueue, moto_sqs: MotoSqs,  # noqa: F811
) -> None:
    urls = moto_sqs.create_queues(fifo=True)
    api, other_api = open_sqs_queue(*urls), open_sqs_queue(*urls)
    assert await api.enqueue("t", {"v": 1}, dedup_key="SM1") is not None
    # SQS accepts the send but stores nothing: the id it gets back names no job.
    assert await other_api.enqueue("t", {"v": 2}, dedup_key="SM1") is not None
    assert await api.depth() == 1
    [job] = await api.receive(10, 0)
    assert job.payload == {"v": 1}


async def test_a_standard_queue_uses_native_delays(
    open_sqs_queue: MakeQueue, moto_sqs: MotoSqs,  # noqa: F811
) -> None:
    queue = open_sqs_queue(*moto_sqs.create_queues(fifo=False))
    await queue.enqueue("t", {}, delay_seconds=1)
    client = moto_sqs.client()
    counts = client.get_queue_attributes(QueueUrl=queue.queue_url, AttributeNames=["All"])
    assert counts["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    [job] = await queue.receive(1, wait_seconds=5)
    assert job.attempt == 1


def test_deferral_count_depends_only_on_the_first_receive() -> None:
    due = 1_000_000.0
    assert _deferrals(None, "1") == 0
    assert _deferrals(due, None) == 0
    assert _deferrals(due, str(int(due * 1000))) == 0  # first seen when due: never deferred
    assert _deferrals(due, str(int((due - 5) * 1000))) == 1
    assert _deferrals(due, str(int((due - 43_200) * 1000))) == 1
    assert _deferrals(due, str(int((due - 43_201) * 1000))) == 2  # two 12 h hides


# -- the runner over SQS -------------------------------------------------------------------


async def test_runner_dead_letters_a_job_failing_every_attempt(fifo: MakeQueue) -> None:
    queue = fifo(max_attempts=3, visibility_timeout=5)
    attempts: list[int] = []

    async def always_fails(job: Job) -> None:
        attempts.append(job.attempt)
        raise RuntimeError(f"boom on attempt {job.attempt}")

    await queue.enqueue("flaky", {"n": 1})
    await WorkerRunner(queue, {"flaky": always_fails}, FAST).run(burst=True)
    assert attempts == [1, 2, 3]
    [dead] = await queue.list_dead()
    assert (dead.attempts, dead.last_error) == (3, "RuntimeError: boom on attempt 3")
    assert await queue.depth() == 0
    assert await queue.dead_count() == 1


async def test_the_lease_of_a_slow_job_is_extended_so_no_one_else_runs_it(
    fifo: MakeQueue,
) -> None:
    slow, other = fifo(visibility_timeout=1), fifo(visibility_timeout=1)
    await slow.enqueue("llm", {"n": 1})
    started, finished = asyncio.Event(), asyncio.Event()
    runs = 0

    async def llm_call(job: Job) -> None:
        nonlocal runs
        runs += 1
        started.set()
        await asyncio.sleep(3.5)  # three and a half leases long
        finished.set()

    runner = WorkerRunner(slow, {"llm": llm_call}, FAST)
    running = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(started.wait(), 10)
        # A second consumer keeps asking for the whole run: the message never shows.
        while not finished.is_set():
            assert await other.receive(10, wait_seconds=1) == []
        await asyncio.wait_for(_until_zero(slow.depth), 10)
    finally:
        runner.stop()
        await running
    assert runs == 1 and runner.processed == 1
    assert await other.receive(10, wait_seconds=0) == []


async def _until_zero(probe: Callable[[], Any]) -> None:
    while await probe() != 0:
        await asyncio.sleep(0.05)


# Run by a child process: receive one job, print it, then hang until killed.
CLAIM = """
import asyncio, json, sys
from adapters.sqs import SqsJobQueue

async def main():
    queue = SqsJobQueue(**json.loads(sys.argv[1]))
    [job] = await queue.receive(1, wait_seconds=10)
    print("claimed", job.id, job.attempt, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_consumer_killed_mid_job_loses_nothing(
    open_sqs_queue: MakeQueue, moto_sqs: MotoSqs,  # noqa: F811
) -> None:
    url, dlq = moto_sqs.create_queues(fifo=True)
    queue = open_sqs_queue(url, dlq, visibility_timeout=1)
    job_id = await queue.enqueue("t", {"message_id": "m-1"})
    options = {"queue_url": url, "dead_letter_queue_url": dlq, "visibility_timeout": 1,
               **queue_options(moto_sqs)}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLAIM, json.dumps(options), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert worker.stdout is not None and worker.stderr is not None
    try:
        line = await asyncio.wait_for(worker.stdout.readline(), 30)
        assert line.decode().split() == ["claimed", job_id, "1"], await worker.stderr.read()
    finally:
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
    assert worker.returncode == -signal.SIGKILL
    [job] = await queue.receive(1, wait_seconds=10)
    assert (job.id, job.attempt, job.payload) == (job_id, 2, {"message_id": "m-1"})
    await queue.ack(job)
    assert await queue.depth() == 0


# -- failures ------------------------------------------------------------------------------


async def test_a_stopped_server_makes_the_queue_unavailable() -> None:
    moto = start_moto()
    url, dlq = moto.create_queues(fifo=True)
    queue = SqsJobQueue(url, dead_letter_queue_url=dlq, **queue_options(moto))
    try:
        await queue.ping()
        moto.server.stop()
        with pytest.raises(QueueUnavailable) as raised:
            await queue.ping()
        assert "testing" not in str(raised.value)  # no credential in the message
        with pytest.raises(QueueUnavailable):
            await queue.enqueue("t", {})
    finally:
        await queue.close()


async def test_a_missing_queue_is_unavailable(
    open_sqs_queue: MakeQueue, moto_sqs: MotoSqs,  # noqa: F811
) -> None:
    base = moto_sqs.endpoint_url + "/123456789012/"
    queue = open_sqs_queue(base + "nope.fifo", base + "nope-dlq.fifo")
    with pytest.raises(QueueUnavailable, match="get_queue_attributes"):
        await queue.ping()


class FakeBatchClient(SqsClient):
    """Answers *Batch calls from a script of 'Failed' lists, recording each request."""

    def __init__(self, failures: list[list[dict[str, Any]]]) -> None:
        super().__init__(region="us-east-1", endpoint_url="http://127.0.0.1:9")
        self.failures = failures
        self.requests: list[list[str]] = []

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        self.requests.append([e["ReceiptHandle"] for e in params["Entries"]])
        failed = self.failures.pop(0) if self.failures else []
        return {"Successful": [], "Failed": failed}


async def test_batch_retries_entries_sqs_failed_and_returns_sender_faults() -> None:
    entries = [{"ReceiptHandle": f"r{n}"} for n in range(12)]
    client = FakeBatchClient([
        [{"Id": "3", "SenderFault": False, "Code": "InternalError"},
         {"Id": "4", "SenderFault": True, "Code": "ReceiptHandleIsInvalid"}],
        [],  # the retry of r3 succeeds
        [],  # the second chunk (r10, r11)
    ])
    rejected = await client.batch("delete_message_batch", "url", entries)
    assert client.requests == [[f"r{n}" for n in range(10)], ["r3"], ["r10", "r11"]]
    assert rejected == [{"ReceiptHandle": "r4", "Code": "ReceiptHandleIsInvalid"}]


async def test_batch_entries_that_keep_failing_raise_instead_of_vanishing() -> None:
    always = [{"Id": "0", "SenderFault": False, "Code": "InternalError"}]
    client = FakeBatchClient([always] * 10)
    with pytest.raises(QueueUnavailable, match="kept failing for 1"):
        await client.batch("change_message_visibility_batch", "url", [{"ReceiptHandle": "r"}])
    assert len(client.requests) == 3


# -- wiring ----------------------------------------------------------------------------------


async def test_queue_backend_sqs_binds_every_queue_role(
    make_settings: Any, moto_sqs: MotoSqs,  # noqa: F811
) -> None:
    url, _ = moto_sqs.create_queues(fifo=True)
    settings = make_settings(
        queue_backend="sqs", queue_sqs_queue_url=url, queue_sqs_endpoint_url=moto_sqs.endpoint_url,
        queue_aws_access_key_id="testing", queue_aws_secret_access_key="testing",
    )
    container = build_container(settings)
    try:
        assert isinstance(container[JobConsumer], SqsJobQueue)
        assert container[DeadLetterStore] is container[JobConsumer]
        await container[Resources].checks["queue"]()
        assert await container[JobQueue].enqueue("t", {"n": 1}) is not None
        [job] = await container[JobConsumer].receive(1, 0)
        await container[JobConsumer].dead_letter(job, "boom")
        assert [d.last_error for d in await container[DeadLetterStore].list_dead()] == ["boom"]
    finally:
        await container[Resources].aclose()


def test_queue_backend_sqs_without_a_url_fails_clearly(make_settings: Any) -> None:
    with pytest.raises(ValueError, match="QUEUE_SQS_QUEUE_URL"):
        build_container(make_settings(queue_backend="sqs"))
