"""The protocol guards' pieces: the throttled log, the loop handler, the 500 keep-alive."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest
from lagom import Container

from adapters.fastapi.server import ThrottledLog, throttle_accept_errors
from application.ports.unit_of_work import UnitOfWork
from bootstrap.app import create_app
from tests.conftest import MakeSettings
from tests.edge.server import INBOUND, inbound, sign
from tests.fakes.threaded_server import ThreadedServer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_throttled_log_reports_once_per_interval_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    throttled = ThrottledLog(10.0, clock)
    with caplog.at_level(logging.ERROR, logger="adapters.fastapi.server"):
        results = []
        for step in range(100):  # 100 failures over 20 s
            clock.now = step * 0.2
            results.append(throttled.note("accept() is failing: %s", "EMFILE"))
    assert results.count(True) == 2
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["accept() is failing: EMFILE (0 more since the last report)",
                     "accept() is failing: EMFILE (49 more since the last report)"]


async def test_loop_handler_throttles_accept_errors_and_passes_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        throttle_accept_errors(loop, 60.0)
        with caplog.at_level(logging.ERROR, logger="adapters.fastapi.server"):
            for _ in range(500):
                loop.call_exception_handler({
                    "message": "socket.accept() out of system resource",
                    "exception": OSError(24, "Too many open files")})
        loop.call_exception_handler({"message": "something else"})
    finally:
        loop.set_exception_handler(previous)
    assert len([r for r in caplog.records if "accept()" in r.getMessage()]) == 1
    assert [c["message"] for c in seen] == ["something else"]


class _Exploding:
    async def __aenter__(self) -> Any:
        raise RuntimeError("boom")

    async def __aexit__(self, *args: object) -> None:
        return None


def test_a_keep_alive_connection_survives_a_500(make_settings: MakeSettings) -> None:
    from bootstrap.container import build_container
    from bootstrap.migrator import migrate

    settings = make_settings()
    migrate(settings)  # else the schema guard answers 503 before the failing unit runs
    container: Container = build_container(settings).clone()
    container[UnitOfWork] = lambda: _Exploding()  # type: ignore[assignment]
    server = ThreadedServer(create_app(settings, container, embedded_worker=False), "api-500")
    server.start()
    try:
        port = int(server.base_url.rsplit(":", 1)[1])
        params = inbound("SM" + "d" * 32)
        from urllib.parse import urlencode

        body = urlencode(params).encode()
        signature = sign(f"http://127.0.0.1:{port}{INBOUND}", params)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall((f"POST {INBOUND} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                          "Content-Type: application/x-www-form-urlencoded\r\n"
                          f"X-Twilio-Signature: {signature}\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
            first = b""
            while b"INTERNAL_ERROR" not in first:
                part = sock.recv(4096)
                assert part, first
                first += part
            assert first.startswith(b"HTTP/1.1 500")
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            second = sock.recv(4096)
        assert second.startswith(b"HTTP/1.1 200"), second
    finally:
        server.stop()
