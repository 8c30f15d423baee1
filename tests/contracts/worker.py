"""Behaviour every queue backend shows under its real worker (WorkerContract).

The consumer-level ``JobQueueContract`` covers backends that are a ``JobConsumer``; this
suite covers what a user sees whatever consumes: the backend's own worker (the project's
``WorkerRunner``, or arq's ``Worker``) running handlers. Subclass ``WorkerContract`` once
per backend and supply a ``harness`` fixture: an object with

- ``queue``: the backend's JobQueue + DeadLetterStore (with ``depth()``), made with
  ``max_attempts=MAX_ATTEMPTS``;
- ``async drain(handlers, timeout)``: run the backend's real worker with these handlers
  (``{task: async (Job) -> object}``) and with ``CONFIG``'s timeout, backoff and
  concurrency, until nothing is queued, delayed or running; then return.

``RunnerHarness`` is that object for any ``JobConsumer`` backend: build it from the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from lagom import Container

from adapters.worker.runner import RunnerConfig, WorkerRunner
from application.errors import PayloadTooLarge, PermanentJobError
from application.ports.job_queue import DeadLetterStore, Job, JobQueue
from application.ports.operations import QueueStats
from bootstrap.container import Resources, build_container
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.settings import Settings
from bootstrap.worker import build_runner
from tests.modules.billing.domain import Invoice, InvoiceStatus
from tests.modules.billing.memory import InMemoryInvoiceLedger, RecordedCounts
from tests.modules.billing.module import MODULE as BILLING
from tests.modules.billing.tasks import (
    MARK_INVOICE_PAID,
    InvoiceLedger,
    MarkInvoicePaidPayload,
    OpenInvoiceReport,
)

Handler = Callable[[Job], Awaitable[object]]

MAX_ATTEMPTS = 3
# Short but real: retries wait 0.1-0.2 s, then 0.2-0.4 s; a job past 1 s times out.
CONFIG = RunnerConfig(concurrency=4, job_timeout=1.0, backoff_base=0.2, backoff_max=1.0,
                      shutdown_grace=2.0, receive_wait=0.05)


class RunnerHarness:
    """The project's WorkerRunner over a JobConsumer queue, run until the queue is empty."""

    def __init__(self, queue: Any, config: RunnerConfig = CONFIG) -> None:
        self.queue = queue
        self.config = config

    async def drain(self, handlers: Mapping[str, Handler], timeout: float = 30.0) -> None:
        runner = WorkerRunner(self.queue, handlers, self.config)
        task = asyncio.create_task(runner.run())
        try:
            async with asyncio.timeout(timeout):
                # depth() counts delayed and running jobs: empty means all is done. Read
                # empty twice: moto computes SQS's counts one attribute after another, and
                # a message turning visible in between is in neither (seen as 0 once).
                while not task.done():
                    if await self.queue.depth() == 0:
                        await asyncio.sleep(0.05)
                        if await self.queue.depth() == 0:
                            break
                    await asyncio.sleep(0.02)
        finally:
            runner.stop()
            await task


@dataclass
class Calls:
    """What handlers saw, in order, with the monotonic time of each call."""

    jobs: list[Job] = field(default_factory=list)
    at: list[float] = field(default_factory=list)

    def record(self, job: Job) -> None:
        self.jobs.append(job)
        self.at.append(time.monotonic())

    @property
    def attempts(self) -> list[int]:
        return [job.attempt for job in self.jobs]


class WorkerContract:
    @pytest.fixture
    def calls(self) -> Calls:
        return Calls()

    # -- payloads -------------------------------------------------------------------------

    async def test_handler_gets_payload_headers_and_attempt_exactly(
        self, harness: Any, calls: Calls
    ) -> None:
        payload = {
            "text": "Olá, ação! 日本語 \u200b tab\tnew\nline \"quoted\" \\ back",
            "emoji": "👍🏽🇧🇷👨‍👩‍👧",
            "nested": {"list": [1, 2.5, None, True, False, {"deep": ["x", {"y": -1}]}]},
            "big_int": 2**53,
        }
        headers = {"correlation_id": "SM123", "traceparent": "00-abc-def-01"}

        async def handle(job: Job) -> None:
            calls.record(job)

        job_id = await harness.queue.enqueue("echo", payload, dedup_key="echo:1", headers=headers)
        await harness.drain({"echo": handle})
        [job] = calls.jobs
        assert (job.id, job.task, job.payload) == (job_id, "echo", payload)
        assert dict(job.headers) == headers
        assert (job.attempt, job.max_attempts, job.dedup_key) == (1, MAX_ATTEMPTS, "echo:1")
        assert job.enqueued_at.tzinfo is not None
        assert await harness.queue.depth() == 0

    async def test_large_payload_round_trips_and_one_past_the_limit_is_refused(
        self, harness: Any, calls: Calls
    ) -> None:
        limit = harness.queue.max_payload_bytes
        body = "é" * 1000 + "x" * (limit - 3024)

        async def handle(job: Job) -> None:
            calls.record(job)

        await harness.queue.enqueue("big", {"body": body})
        with pytest.raises(PayloadTooLarge):
            await harness.queue.enqueue("big", {"body": "x" * (limit + 1024)})
        await harness.drain({"big": handle})
        assert [job.payload for job in calls.jobs] == [{"body": body}]

    # -- success, retries, dead letters ----------------------------------------------------

    async def test_a_done_job_is_removed_and_never_runs_again(
        self, harness: Any, calls: Calls
    ) -> None:
        async def handle(job: Job) -> None:
            calls.record(job)

        for n in range(12):
            await harness.queue.enqueue("t", {"n": n})
        await harness.drain({"t": handle})
        assert sorted(job.payload["n"] for job in calls.jobs) == list(range(12))
        assert await harness.queue.depth() == 0
        await harness.drain({"t": handle})
        assert len(calls.jobs) == 12

    async def test_failures_are_retried_with_growing_backoff_then_succeed(
        self, harness: Any, calls: Calls
    ) -> None:
        async def flaky(job: Job) -> None:
            calls.record(job)
            if job.attempt < MAX_ATTEMPTS:
                raise ConnectionError(f"transient {job.attempt}")

        await harness.queue.enqueue("flaky", {"n": 1})
        await harness.drain({"flaky": flaky})
        assert calls.attempts == [1, 2, 3]
        first_gap, second_gap = (b - a for a, b in zip(calls.at, calls.at[1:], strict=False))
        # Equal jitter: between half and all of base * 2^(attempt-1).
        assert first_gap >= CONFIG.backoff_base / 2 * 0.95
        assert second_gap >= CONFIG.backoff_base * 0.95
        assert await harness.queue.list_dead() == []
        assert await harness.queue.depth() == 0

    async def test_a_job_failing_every_attempt_is_dead_lettered_with_its_last_error(
        self, harness: Any, calls: Calls
    ) -> None:
        async def always_fails(job: Job) -> None:
            calls.record(job)
            raise RuntimeError(f"boom on attempt {job.attempt}")

        await harness.queue.enqueue("doomed", {"message_id": "m-1", "note": "ü ✓"},
                                    dedup_key="doomed:m-1")
        await harness.drain({"doomed": always_fails})
        assert calls.attempts == list(range(1, MAX_ATTEMPTS + 1))
        [dead] = await harness.queue.list_dead()
        assert (dead.task, dict(dead.payload)) == ("doomed", {"message_id": "m-1", "note": "ü ✓"})
        assert dead.attempts == MAX_ATTEMPTS
        assert dead.last_error == f"RuntimeError: boom on attempt {MAX_ATTEMPTS}"
        assert dead.dedup_key == "doomed:m-1"
        assert dead.failed_at.tzinfo is not None
        assert await harness.queue.depth() == 0

    async def test_a_timed_out_job_is_retried(self, harness: Any, calls: Calls) -> None:
        async def slow_once(job: Job) -> None:
            calls.record(job)
            if job.attempt == 1:
                await asyncio.sleep(30)

        await harness.queue.enqueue("slow", {})
        await harness.drain({"slow": slow_once})
        assert calls.attempts == [1, 2]
        assert calls.at[1] - calls.at[0] >= CONFIG.job_timeout
        assert await harness.queue.list_dead() == []

    async def test_a_permanent_error_is_dead_lettered_without_retries(
        self, harness: Any, calls: Calls
    ) -> None:
        async def hopeless(job: Job) -> None:
            calls.record(job)
            raise PermanentJobError("message is gone")

        await harness.queue.enqueue("hopeless", {})
        await harness.drain({"hopeless": hopeless})
        assert calls.attempts == [1]
        [dead] = await harness.queue.list_dead()
        assert (dead.attempts, dead.last_error) == (1, "PermanentJobError: message is gone")

    async def test_a_task_no_module_registers_is_dead_lettered_at_once(
        self, harness: Any, calls: Calls
    ) -> None:
        async def handle(job: Job) -> None:
            calls.record(job)

        await harness.queue.enqueue("unregistered", {"n": 1}, dedup_key="unregistered:1")
        await harness.drain({"known": handle})
        assert calls.jobs == []
        [dead] = await harness.queue.list_dead()
        assert (dead.task, dict(dead.payload), dead.attempts) == ("unregistered", {"n": 1}, 1)
        assert dead.last_error == "no module registers task 'unregistered'"
        assert dead.dedup_key == "unregistered:1"
        assert await harness.queue.depth() == 0

    # -- delays and dedup -----------------------------------------------------------------

    async def test_a_delayed_job_is_not_delivered_early(self, harness: Any, calls: Calls) -> None:
        async def handle(job: Job) -> None:
            calls.record(job)

        start = time.monotonic()
        # Long enough that "now" runs first even when the machine is busy.
        await harness.queue.enqueue("later", {"n": 1}, delay_seconds=1.5)
        await harness.queue.enqueue("now", {"n": 2})
        await harness.drain({"later": handle, "now": handle})
        by_task = {job.task: at for job, at in zip(calls.jobs, calls.at, strict=True)}
        assert by_task["later"] - start >= 1.49
        # "now" is not held back behind "later". On a machine so busy that the worker's
        # first receive returns after "later" is due, both come in one batch, in queue order.
        assert by_task["now"] < by_task["later"] + 0.1

    async def test_the_same_dedup_key_twice_runs_once(self, harness: Any, calls: Calls) -> None:
        async def handle(job: Job) -> None:
            calls.record(job)

        assert await harness.queue.enqueue("t", {"v": 1}, dedup_key="msg:1") is not None
        assert await harness.queue.enqueue("t", {"v": 2}, dedup_key="msg:1") is None
        assert await harness.queue.enqueue("t", {"v": 3}, dedup_key="msg:2") is not None
        await harness.drain({"t": handle})
        assert sorted(job.payload["v"] for job in calls.jobs) == [1, 3]
        # A recently done job still holds its key: a late duplicate is not run again.
        assert await harness.queue.enqueue("t", {"v": 4}, dedup_key="msg:1") is None
        await harness.drain({"t": handle})
        assert len(calls.jobs) == 2

    # -- the dead-letter store ------------------------------------------------------------

    async def test_dead_letters_are_listed_replayed_and_purged(
        self, harness: Any, calls: Calls
    ) -> None:
        healthy = False

        async def provider(job: Job) -> None:
            calls.record(job)
            if not healthy:
                raise PermanentJobError(f"provider refused {job.payload['n']}")

        for n in range(3):
            await harness.queue.enqueue("send", {"n": n}, dedup_key=f"send:{n}")
        await harness.drain({"send": provider})
        dead = await harness.queue.list_dead()
        assert sorted(d.payload["n"] for d in dead) == [0, 1, 2]
        assert len(await harness.queue.list_dead(limit=2)) == 2

        healthy = True
        replayed = next(d for d in dead if d.payload["n"] == 1)
        assert await harness.queue.replay(replayed.id) is True
        assert await harness.queue.replay(replayed.id) is False
        assert await harness.queue.replay("no-such-dead-letter") is False
        await harness.drain({"send": provider})
        last = calls.jobs[-1]
        assert (last.payload, last.attempt, last.dedup_key) == ({"n": 1}, 1, "send:1")
        assert sorted(d.payload["n"] for d in await harness.queue.list_dead()) == [0, 2]

        assert await harness.queue.purge() == 2
        assert await harness.queue.list_dead() == []
        assert await harness.queue.purge() == 0


# -- a business module's tasks, composed through the public API ---------------------------


class ModuleWorkerContract:
    """The example ``billing`` module's task and periodic task under each backend's real
    worker, composed the way a user composes it: ``build_container(settings, modules=[...])``
    then ``build_runner`` (the project's runner, or arq's Worker for arq).

    Subclass once per backend with a ``queue_settings`` fixture: ``Settings`` choosing the
    backend (its database backend ``memory``, the sweep off).
    """

    @pytest.fixture
    async def composed(self, queue_settings: Settings) -> AsyncIterator[Composed]:
        composed = Composed.build(queue_settings)
        try:
            yield composed
        finally:
            await composed.container[Resources].aclose()

    async def test_the_seeds_usage_shape_runs_the_modules_handler(
        self, composed: Composed
    ) -> None:
        # Resolve the job queue from the container, enqueue the module's task: it runs.
        queue = composed.container[JobQueue]
        payload = MarkInvoicePaidPayload("inv-1")
        assert await queue.enqueue(MARK_INVOICE_PAID, payload.to_payload(),
                                   dedup_key=payload.dedup_key) is not None
        async with composed.running():
            await composed.until(lambda: composed.status("inv-1") is InvoiceStatus.PAID)
        paid = composed.ledger.rows["inv-1"]
        assert paid.paid_at is not None and paid.version == 1
        assert composed.ledger.rows["inv-2"].status is InvoiceStatus.OPEN
        assert await composed.container[DeadLetterStore].list_dead() == []
        assert await composed.container[QueueStats].dead_count() == 0

    async def test_the_modules_periodic_task_runs_on_its_schedule(
        self, composed: Composed
    ) -> None:
        async with composed.running():
            await composed.until(lambda: len(composed.report.counts) >= 2)
            assert set(composed.report.counts) == {2}  # two open invoices, each run
            await composed.container[JobQueue].enqueue(
                MARK_INVOICE_PAID, MarkInvoicePaidPayload("inv-2").to_payload())
            await composed.until(lambda: composed.report.counts[-1] == 1)

    async def test_a_task_no_module_registers_is_dead_lettered_clearly(
        self, composed: Composed
    ) -> None:
        store = composed.container[DeadLetterStore]
        await composed.container[JobQueue].enqueue("nobody.registers_this", {"n": 1})
        async with composed.running():
            await composed.until_async(lambda: _dead_count(store))
        [dead] = await store.list_dead()
        assert dead.task == "nobody.registers_this" and dict(dead.payload) == {"n": 1}
        assert dead.last_error == "no module registers task 'nobody.registers_this'"
        assert dead.attempts == 1  # not retried: no retry could find a handler

    async def test_a_bad_payload_is_dead_lettered_at_once_and_loses_nothing(
        self, composed: Composed
    ) -> None:
        store = composed.container[DeadLetterStore]
        await composed.container[JobQueue].enqueue(MARK_INVOICE_PAID, {"invoice_id": 42})
        async with composed.running():
            await composed.until_async(lambda: _dead_count(store))
        [dead] = await store.list_dead()
        assert dead.attempts == 1 and dict(dead.payload) == {"invoice_id": 42}
        assert dead.last_error.startswith("PermanentJobError: payload field 'invoice_id'")
        assert {i.status for i in composed.ledger.rows.values()} == {InvoiceStatus.OPEN}


async def _dead_count(store: DeadLetterStore) -> bool:
    return len(await store.list_dead()) > 0


@dataclass
class Composed:
    """A container composing the kernel's modules and billing, with billing's ports bound
    to in-memory implementations (what a test or the module's own binding would do)."""

    settings: Settings
    container: Container
    ledger: InMemoryInvoiceLedger
    report: RecordedCounts

    @classmethod
    def build(cls, settings: Settings) -> Composed:
        ledger = InMemoryInvoiceLedger(_invoice("inv-1"), _invoice("inv-2"))
        report = RecordedCounts()

        def bind(container: Container, own: object) -> None:
            container[InvoiceLedger] = ledger  # type: ignore[type-abstract]
            container[OpenInvoiceReport] = report  # type: ignore[type-abstract]

        # The module as declared, its ports bound to in-memory doubles the test can read.
        billing = dataclasses.replace(BILLING, bind=bind)
        container = build_container(settings, modules=[WHATSAPP, billing])
        return cls(settings, container, ledger, report)

    def status(self, invoice_id: str) -> InvoiceStatus:
        return self.ledger.rows[invoice_id].status

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        runner = build_runner(self.container, self.settings)
        task = asyncio.create_task(runner.run())
        try:
            yield
        finally:
            runner.stop()
            await asyncio.wait_for(task, 30)

    async def until(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        async def check() -> bool:
            return condition()

        await self.until_async(check, timeout)

    async def until_async(
        self, condition: Callable[[], Awaitable[bool]], timeout: float = 20.0
    ) -> None:
        async with asyncio.timeout(timeout):
            while not await condition():
                await asyncio.sleep(0.05)


def _invoice(invoice_id: str) -> Invoice:
    return Invoice(id=invoice_id, owner_id="AC1", number=f"N-{invoice_id}", amount_cents=1200,
                   status=InvoiceStatus.OPEN, created_at=datetime.now(UTC))
