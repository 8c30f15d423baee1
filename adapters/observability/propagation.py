"""W3C trace context in job headers, and the log context that travels with a job."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# Explicit W3C propagator: the global one follows OTEL_PROPAGATORS, which may be anything.
_W3C = TraceContextTextMapPropagator()

# Log-context keys copied from the producer's context into the job and bound by the worker.
CONTEXT_KEYS = ("correlation_id", "owner_id", "conversation_id")


def inject(headers: dict[str, str]) -> None:
    """Add ``traceparent`` (and ``tracestate``) of the current span to ``headers``."""
    _W3C.inject(headers)


def extract(headers: Mapping[str, str]) -> Context:
    """The context a job was enqueued in; an empty context when it carries none."""
    return _W3C.extract(dict(headers))
