"""The aiohttp pool behind httpx: an error says "never sent" only when nothing was sent,
and no cookie a response set rides on a later call.

Raw asyncio servers on loopback misbehave in each way a provider's edge can; what matters
is the class of the httpx error, since the Twilio sender retries a ConnectError or
ConnectTimeout at once (never sent) and treats every other error as maybe sent.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from adapters.http_pool.transport import AiohttpPool, api_client

OK = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n"
      b'{"ok": true}')


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []


@asynccontextmanager
async def serve(behaviour: Callable[[Server, asyncio.StreamWriter], Awaitable[None]]
                ) -> AsyncIterator[tuple[str, Server]]:
    state = Server()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                state.requests.append(head + await reader.readexactly(length))
                await behaviour(state, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def client(max_connections: int = 4, read: float = 0.5,
                 pool: float = 5.0) -> AsyncIterator[httpx.AsyncClient]:
    timeout = httpx.Timeout(5.0, read=read, pool=pool)
    async with httpx.AsyncClient(transport=AiohttpPool(max_connections=max_connections),
                                 timeout=timeout) as c:
        yield c


async def answer(_: Server, writer: asyncio.StreamWriter) -> None:
    writer.write(OK)
    await writer.drain()


async def test_answers_and_reuses_one_kept_alive_connection() -> None:
    async with serve(answer) as (url, state), client() as c:
        first = await c.post(f"{url}/a", data={"Body": "one"})
        second = await c.post(f"{url}/b", data={"Body": "two"})
    assert (first.status_code, first.json(), second.json()) == (200, {"ok": True}, {"ok": True})
    assert first.headers["content-type"] == "application/json"
    assert state.connections == 1
    assert [r.split(b"\r\n\r\n")[1] for r in state.requests] == [b"Body=one", b"Body=two"]


async def test_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:  # a port that was free and now has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client() as c:
        with pytest.raises(httpx.ConnectError):
            await c.post(f"http://127.0.0.1:{port}/", data={"Body": "x"})


async def test_dropped_after_the_request_arrived_is_a_read_error_not_a_connect_error() -> None:
    async def hang_up(_: Server, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async with serve(hang_up) as (url, state), client() as c:
        with pytest.raises(httpx.TransportError) as info:
            await c.post(f"{url}/", data={"Body": "x"})
    assert len(state.requests) == 1  # the server had it
    assert isinstance(info.value, httpx.ReadError)


async def test_dropped_in_the_middle_of_the_body_is_a_read_error() -> None:
    async def half(_: Server, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"sid\": ")
        await writer.drain()
        writer.close()

    async with serve(half) as (url, _), client() as c:
        with pytest.raises(httpx.TransportError) as info:
            await c.post(f"{url}/", data={"Body": "x"})
    assert isinstance(info.value, httpx.ReadError)


async def test_answer_slower_than_the_read_timeout_is_a_read_timeout() -> None:
    async def slow(_: Server, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(1.0)
        writer.write(OK)

    async with serve(slow) as (url, state), client(read=0.2) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.post(f"{url}/", data={"Body": "x"})
    assert len(state.requests) == 1


async def test_no_free_connection_in_time_is_a_connect_timeout_and_sends_nothing() -> None:
    release = asyncio.Event()

    async def held(_: Server, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.write(OK)

    async with serve(held) as (url, state), client(max_connections=1, read=5.0,
                                                   pool=0.2) as c:
        first = asyncio.create_task(c.post(f"{url}/", data={"Body": "first"}))
        await asyncio.sleep(0.1)
        with pytest.raises(httpx.ConnectTimeout):
            await c.post(f"{url}/", data={"Body": "second"})
        release.set()
        assert (await first).status_code == 200
    assert [r.split(b"\r\n\r\n")[1] for r in state.requests] == [b"Body=first"]


SETS_COOKIE = (b"HTTP/1.1 200 OK\r\nSet-Cookie: session=first-owner; Path=/\r\n"
               b"Content-Type: application/json\r\nContent-Length: 12\r\n\r\n"
               b'{"ok": true}')


async def sets_cookie(_: Server, writer: asyncio.StreamWriter) -> None:
    writer.write(SETS_COOKIE)
    await writer.drain()


def cookie_headers(state: Server) -> list[list[bytes]]:
    return [[line for line in request.split(b"\r\n\r\n")[0].split(b"\r\n")
             if line.lower().startswith(b"cookie:")] for request in state.requests]


async def test_a_cookie_set_by_an_answer_is_not_sent_on_later_calls() -> None:
    # One client serves every owner: a cookie from one owner's call must not reach the next.
    timeout = httpx.Timeout(5.0)
    async with serve(sets_cookie) as (url, state), \
            api_client(AiohttpPool(max_connections=4), timeout) as c:
        first = await c.post(f"{url}/Accounts/AC1/Messages.json", data={"Body": "one"})
        second = await c.post(f"{url}/Accounts/AC2/Messages.json", data={"Body": "two"})
        assert first.headers["set-cookie"].startswith("session=first-owner")
        assert (first.status_code, second.status_code) == (200, 200)
        assert not c.cookies
    assert cookie_headers(state) == [[], []]


async def test_the_pool_alone_keeps_no_cookie_either() -> None:
    # aiohttp has its own jar under httpx: a plain httpx client over the pool sends none.
    # By name: aiohttp's default jar ignores cookies from a bare IP address.
    async with serve(sets_cookie) as (ip_url, state), \
            httpx.AsyncClient(transport=AiohttpPool(max_connections=4)) as c:
        url = ip_url.replace("127.0.0.1", "localhost")
        await c.post(f"{url}/a", data={"Body": "one"})
        c.cookies.jar.clear()  # what httpx kept: only aiohttp's jar could send it now
        await c.post(f"{url}/b", data={"Body": "two"})
    assert cookie_headers(state) == [[], []]
