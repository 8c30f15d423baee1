"""Closed-loop HTTP/1.1 load generator: keep-alive raw sockets, one request in flight per
connection, a different correctly signed Twilio inbound form on every request.

It runs in its own process (``run_load`` is the process target), and every request is
built and signed before the clock starts, so the generator spends its time on sockets.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

INBOUND_PATH = "/channels/twilio/v1/webhooks/inbound"
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "development-auth-token"
CHANNEL = "whatsapp:+14155238886"
CONTACTS = 500
REQUEST_TIMEOUT = 10.0


@dataclass
class LoadSpec:
    port: int
    connections: int
    duration: float
    warmup: float
    sid_prefix: str  # unique per process and run: every MessageSid is new
    max_requests: int
    path: str = INBOUND_PATH


@dataclass
class LoadResult:
    latencies_ns: list[int] = field(default_factory=list)  # measured window only
    measured_seconds: float = 0.0
    ok_sids: list[str] = field(default_factory=list)  # every 200, warm-up included
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: int = 0
    exhausted: bool = False


def build_requests(spec: LoadSpec) -> list[tuple[str, bytes]]:
    """(MessageSid, raw request bytes), each form signed for the URL the server sees."""
    url = f"http://127.0.0.1:{spec.port}{spec.path}"
    validator = RequestValidator(AUTH_TOKEN)
    out = []
    for n in range(spec.max_requests):
        # Twilio's format (SM + 32 hex), which the edge checks; unique per prefix and n.
        sid = "SM" + hashlib.blake2b(f"{spec.sid_prefix}:{n}".encode(), digest_size=16).hexdigest()
        contact = f"whatsapp:+5511{900000000 + n % CONTACTS}"
        form = {
            "SmsMessageSid": sid, "NumMedia": "0", "ProfileName": f"Contact {n % CONTACTS}",
            "MessageType": "text", "SmsSid": sid, "WaId": contact[10:], "SmsStatus": "received",
            "Body": f"hello number {n}", "To": CHANNEL, "NumSegments": "1",
            "ReferralNumMedia": "0", "MessageSid": sid, "AccountSid": ACCOUNT_SID,
            "From": contact, "ApiVersion": "2010-04-01",
        }
        body = urlencode(form).encode()
        signature = validator.compute_signature(url, form)
        head = (
            f"POST {spec.path} HTTP/1.1\r\nHost: 127.0.0.1:{spec.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        out.append((sid, head.encode() + body))
    return out


class _Client(asyncio.Protocol):
    """One keep-alive connection: send, read one response, send the next."""

    def __init__(self, runner: _Runner) -> None:
        self.runner = runner
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.sid = ""
        self.started = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send_next()

    def send_next(self) -> None:
        item = self.runner.next_request()
        if item is None:
            self.close()
            return
        self.sid, raw = item
        self.started = time.perf_counter_ns()
        assert self.transport is not None
        self.transport.write(raw)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length:]
        status = int(head.split(" ", 2)[1])
        self.runner.record(self.sid, status, time.perf_counter_ns() - self.started)
        self.sid = ""
        self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sid:  # a request was in flight: the server dropped it
            self.runner.result.socket_errors += 1
            self.sid = ""
        if not self.done.done():
            self.done.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def overdue(self, now_ns: int) -> bool:
        return bool(self.sid) and now_ns - self.started > REQUEST_TIMEOUT * 1e9


class _Runner:
    def __init__(self, spec: LoadSpec, requests: list[tuple[str, bytes]]) -> None:
        self.spec = spec
        self.requests = requests
        self.index = 0
        self.result = LoadResult()
        self.measuring_from = 0
        self.stop_at = 0

    def next_request(self) -> tuple[str, bytes] | None:
        if time.perf_counter_ns() >= self.stop_at:
            return None
        if self.index >= len(self.requests):
            self.result.exhausted = True
            return None
        item = self.requests[self.index]
        self.index += 1
        return item

    def record(self, sid: str, status: int, latency_ns: int) -> None:
        result = self.result
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if status == 200:
            result.ok_sids.append(sid)
        now = time.perf_counter_ns()
        # The window counts requests both started and answered inside it.
        if now - latency_ns >= self.measuring_from and now <= self.stop_at:
            result.latencies_ns.append(latency_ns)

    async def run(self) -> LoadResult:
        loop = asyncio.get_running_loop()
        start = time.perf_counter_ns()
        self.measuring_from = start + int(self.spec.warmup * 1e9)
        self.stop_at = self.measuring_from + int(self.spec.duration * 1e9)
        clients: list[_Client] = []
        for _ in range(self.spec.connections):
            try:
                _, client = await loop.create_connection(
                    lambda: _Client(self), "127.0.0.1", self.spec.port)
                clients.append(client)
            except OSError:
                self.result.socket_errors += 1
        while not all(c.done.done() for c in clients):
            await asyncio.sleep(0.05)
            now = time.perf_counter_ns()
            for client in clients:
                if client.overdue(now):  # a timeout counts as a socket error, as wrk does
                    client.close()
        self.result.measured_seconds = (
            min(time.perf_counter_ns(), self.stop_at) - self.measuring_from) / 1e9
        return self.result


def run_load(spec: LoadSpec, ready: Any, go: Any, results: Any) -> None:
    """Process target: build every request, signal ready, wait for go, run, report."""
    requests = build_requests(spec)
    ready.set()
    go.wait()
    results.put(asyncio.run(_Runner(spec, requests).run()))
