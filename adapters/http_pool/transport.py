"""httpx's client API over aiohttp's connection pool, for outbound calls made in bulk.

httpcore's pool rescans every connection on each request event: with a hundred model
calls or Twilio sends in flight that scan was most of the reply path's CPU. aiohttp's
pool does not, and ``httpx-aiohttp`` puts it behind httpx's transport interface, so the
adapters keep talking httpx.

That package maps every aiohttp connection error to ``httpx.ConnectTimeout``, which reads
as "never sent", even when the server dropped the connection after the request went out.
The Twilio sender must not resend on that, so here an error is a connect error only when
the connection was never made (or no pooled one became free in time); anything later,
including errors while reading the body, is a read error: the request may have arrived.

Neither layer keeps cookies. One client serves every owner (the credentials travel per
request), so a cookie a response set for one owner's call would ride on the next owner's;
and httpx parsing each response's headers for cookies through ``http.cookiejar`` cost
more CPU than the rest of its response handling.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookiejar import Cookie, CookieJar
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


def api_client(transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout) -> httpx.AsyncClient:
    """An httpx client for a provider's API over ``transport``, keeping no cookies."""
    return httpx.AsyncClient(timeout=timeout, transport=transport, cookies=_NoCookies())


class _NoCookies(CookieJar):
    """A jar that stores nothing, so httpx neither keeps nor sends a response's cookies."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Cookie) -> None:
        return None


class AiohttpPool(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int) -> None:
        limits = httpx.Limits(max_connections=max_connections)
        self._inner = AiohttpTransport(limits=limits, client=lambda: self._session(limits))

    def _session(self, limits: httpx.Limits) -> aiohttp.ClientSession:
        # Built on first use, inside the running loop, as the package's own default is;
        # the same connector, with a cookie jar that ignores every cookie.
        connector = aiohttp.TCPConnector(limit=limits.max_connections or 0,
                                         keepalive_timeout=limits.keepalive_expiry,
                                         ssl=self._inner.ssl_context)
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._inner.handle_async_request(request)
        except (httpx.TransportError, aiohttp.ClientError) as exc:
            raise _sent_or_not(exc, request) from exc
        response.stream = _Body(response.stream, request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _sent_or_not(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    cause = exc.__cause__ if isinstance(exc, httpx.TransportError) else exc
    message = str(exc) or type(cause).__name__
    if isinstance(cause, aiohttp.ClientConnectorError):  # refused, unreachable, TLS
        return httpx.ConnectError(message, request=request)
    if isinstance(cause, aiohttp.ConnectionTimeoutError):  # no free connection, or no connect
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(cause, aiohttp.SocketTimeoutError):
        return httpx.ReadTimeout(message, request=request)
    return httpx.ReadError(message, request=request)


class _Body(httpx.AsyncByteStream):
    """The response body; any failure reading it is a read error (the request was sent)."""

    def __init__(self, inner: httpx.AsyncByteStream | httpx.SyncByteStream,
                 request: httpx.Request) -> None:
        assert isinstance(inner, httpx.AsyncByteStream)
        self._inner = inner
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.ReadTimeout:
            raise
        except (httpx.TransportError, aiohttp.ClientError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__,
                                  request=self._request) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()
