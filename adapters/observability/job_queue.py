"""A ``JobQueue`` decorator: each enqueue is a producer span whose context rides in the job.

Wraps the producer side only, and passes the queue's operations (``ping``, ``depth``,
``dead_count``, ``close``) through as typed methods. The consumer side (receive/ack/retry)
stays the bare queue instance, so its in-process wake-ups are untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from opentelemetry.trace import SpanKind, Tracer

from adapters.observability.propagation import CONTEXT_KEYS, inject
from application.ports.operations import OperatedJobQueue


class TracingJobQueue:
    def __init__(self, inner: OperatedJobQueue, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    # The queue's operations pass through untraced: probes, not work.

    async def ping(self) -> None:
        await self._inner.ping()

    async def depth(self) -> int:
        return await self._inner.depth()

    async def dead_count(self) -> int:
        return await self._inner.dead_count()

    async def close(self) -> None:
        await self._inner.close()

    async def enqueue(
        self,
        task: str,
        payload: Mapping[str, Any],
        *,
        dedup_key: str | None = None,
        delay_seconds: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> str | None:
        carried = dict(headers or {})
        bound = structlog.contextvars.get_contextvars()
        for key in CONTEXT_KEYS:
            # The caller's own header wins; otherwise the log context travels with the job.
            if key not in carried and isinstance(bound.get(key), str):
                carried[key] = bound[key]
        attributes = {
            "messaging.system": "wta",
            "messaging.operation.type": "send",
            "messaging.destination.name": task,
        }
        with self._tracer.start_as_current_span(
            f"send {task}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            inject(carried)
            job_id = await self._inner.enqueue(
                task, payload, dedup_key=dedup_key, delay_seconds=delay_seconds, headers=carried
            )
            span.set_attribute("wta.job.deduplicated", job_id is None)
            if job_id is not None:
                span.set_attribute("messaging.message.id", job_id)
            return job_id
