"""The project's metric instruments, created once per meter, and the queue gauges."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation

log = logging.getLogger(__name__)

# Seconds from enqueue to finish: queue wait plus run, retries included.
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


@dataclass(frozen=True, slots=True)
class Instruments:
    webhook_requests: Counter
    job_runs: Counter
    job_latency: Histogram
    job_duration: Histogram
    send_failures: Counter

    @classmethod
    def create(cls, meter: Meter) -> Instruments:
        return cls(
            webhook_requests=meter.create_counter(
                "wta.webhook.requests", unit="{request}",
                description="Twilio webhook requests by route and outcome"),
            job_runs=meter.create_counter(
                "wta.job.runs", unit="{run}", description="Job runs by task and outcome"),
            job_latency=meter.create_histogram(
                "wta.job.latency", unit="s", description="Seconds from enqueue to finish",
                explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS),
            job_duration=meter.create_histogram(
                "wta.job.duration", unit="s", description="Seconds one job run took",
                explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS),
            send_failures=meter.create_counter(
                "wta.send.failures", unit="{failure}",
                description="Message sends the provider refused or left unconfirmed, by "
                            "provider error code"),
        )


Probe = Callable[[], Awaitable[int]]


class QueueGauges:
    """Queue depth and dead-letter count as observable gauges.

    The queue's probes are async and the meter reads gauges from its own thread, so the
    values are sampled on the event loop (``sample``/``run``) and the gauges report the
    latest sample; nothing is reported before the first one.
    """

    def __init__(self, meter: Meter, depth: Probe, dead_count: Probe) -> None:
        self._probes = {"depth": depth, "dead": dead_count}
        self._values: dict[str, int] = {}
        meter.create_observable_gauge(
            "wta.queue.depth", [self._observe("depth")], unit="{job}",
            description="Jobs waiting or running")
        meter.create_observable_gauge(
            "wta.queue.dead_letters", [self._observe("dead")], unit="{job}",
            description="Jobs in the dead-letter store")

    def _observe(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            value = self._values.get(name)
            return [] if value is None else [Observation(value)]

        return callback

    async def sample(self) -> None:
        for name, probe in self._probes.items():
            try:
                self._values[name] = await probe()
            except Exception as exc:
                # A stale number would mislead: report nothing until the queue answers.
                self._values.pop(name, None)
                log.debug("queue gauge %s unavailable: %s", name, type(exc).__name__)

    async def run(self, interval: float) -> None:
        """Sample every ``interval`` seconds until cancelled."""
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await self.sample()
                await asyncio.sleep(interval)
