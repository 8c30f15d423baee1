"""An httpx transport that makes each outbound request a client span and propagates it.

A transport rather than event hooks: hooks never see a request that failed to connect,
which would leave its span open; the transport sees every outcome.
"""

from __future__ import annotations

import httpx
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from adapters.observability.propagation import inject


class TracingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = f":{url.port}" if url.port is not None else ""
        attributes: dict[str, str | int] = {
            "http.request.method": request.method,
            "server.address": url.host,
            # No query and no userinfo: either may carry a credential.
            "url.full": f"{url.scheme}://{url.host}{port}{url.path}",
        }
        if url.port is not None:
            attributes["server.port"] = url.port
        with self._tracer.start_as_current_span(
            request.method, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            carrier: dict[str, str] = {}
            inject(carrier)
            request.headers.update(carrier)
            response = await self._inner.handle_async_request(request)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_status(Status(StatusCode.ERROR, str(response.status_code)))
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()
