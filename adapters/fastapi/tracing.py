"""The HTTP server span of each request, the webhook request counter, and the access line.

A small ASGI middleware on the OpenTelemetry API rather than an instrumentation package: it
needs only a span, the route template and the status, and it decides which callers'
trace context to trust.
"""

from __future__ import annotations

import time

import structlog
from opentelemetry.context import Context
from opentelemetry.metrics import Counter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.fastapi.access_log import log_request

_W3C = TraceContextTextMapPropagator()

_OUTCOMES = {200: "accepted", 403: "rejected", 422: "invalid", 503: "unavailable"}


def webhook_outcome(status: int) -> str:
    return _OUTCOMES.get(status) or ("error" if status >= 500 else f"http_{status}")


class TracingMiddleware:
    """Pure ASGI, like RequestIdMiddleware, so the span is current while the route runs.

    Requests under ``webhook_prefix`` come from Twilio, the public internet: their trace
    headers are ignored (an unsampled ``traceparent`` would silence the whole message's
    trace) and they are counted by outcome.
    """

    def __init__(
        self, app: ASGIApp, *, tracer: Tracer, webhook_requests: Counter, webhook_prefix: str
    ) -> None:
        self.app = app
        self._tracer = tracer
        self._webhook_requests = webhook_requests
        self._webhook_prefix = webhook_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        webhook = path.startswith(self._webhook_prefix)
        parent = Context() if webhook else _W3C.extract(
            {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        )
        status = 500  # what the client gets if the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self._tracer.start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                bound = structlog.contextvars.get_contextvars()
                for key in ("request_id", "correlation_id"):
                    if isinstance(bound.get(key), str):
                        span.set_attribute(f"wta.{key}", bound[key])
                if webhook:
                    self._webhook_requests.add(1, {
                        "route": route or path, "outcome": webhook_outcome(status),
                        "http.response.status_code": status,
                    })
                # Inside the span and the request's context: the line carries both.
                log_request(scope, status, started)
