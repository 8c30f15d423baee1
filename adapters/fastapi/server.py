"""uvicorn's h11 protocol with the guards it lacks: a header timeout and a connection cap.

uvicorn closes idle keep-alive connections, but a connection that never finishes its
request headers (idle from the start, or slowloris) is held forever, and nothing bounds
how many are open: under a 1,024 descriptor limit, 1,100 such sockets stop the service.
Here every connection must deliver its headers within ``header_timeout`` seconds, and
past ``max_connections`` the oldest connection with no request in progress is shed to
make room, so live requests keep being served.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class GuardedH11Protocol(H11Protocol):
    header_timeout: float = 10.0
    max_connections: int = 1000
    # Per server: open connections in arrival order (a dict keeps insertion order).
    _arrivals: dict[Any, dict[GuardedH11Protocol, None]] = {}

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        arrivals = self._arrivals.setdefault(id(self.server_state), {})
        arrivals[self] = None
        self._arm()
        if len(arrivals) > self.max_connections:
            self._shed(arrivals)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        arrivals = self._arrivals.get(id(self.server_state))
        if arrivals is not None:
            arrivals.pop(self, None)
            if not arrivals:
                self._arrivals.pop(id(self.server_state), None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._idle():
            self._disarm()  # headers are in; the body has its own deadline (limits.py)
        elif self._header_timer is None and not self.transport.is_closing():
            self._arm()  # the next request on a keep-alive connection has begun

    def _idle(self) -> bool:
        """No request in progress: headers not (yet) received, or the last one answered."""
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._idle() and not self.transport.is_closing():
            self.transport.close()

    def _shed(self, arrivals: dict[GuardedH11Protocol, None]) -> None:
        victim = next((c for c in arrivals if c is not self and c._idle()), self)
        arrivals.pop(victim, None)
        _SHED_LOG.note("connection limit (%d) reached: shedding idle connections",
                       self.max_connections)
        victim.transport.close()


def guarded_protocol(*, header_timeout: float, max_connections: int) -> type[H11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with these bounds."""
    return type("ConfiguredGuardedH11Protocol", (GuardedH11Protocol,), {
        "header_timeout": header_timeout, "max_connections": max_connections})


class ThrottledLog:
    """One log line per interval for a repeating event, with the count of the others."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None
        self._suppressed = 0

    def note(self, message: str, *args: object) -> bool:
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            self._suppressed += 1
            return False
        suppressed, self._suppressed, self._last = self._suppressed, 0, now
        log.error(message + " (%d more since the last report)", *args, suppressed)
        return True


_SHED_LOG = ThrottledLog(10.0)


def throttle_accept_errors(
    loop: asyncio.AbstractEventLoop, interval: float
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """Install a loop exception handler logging ``accept()`` failures once per interval.

    Out of descriptors, asyncio retries ``accept()`` and reports every failure; under a
    connection flood that is megabytes of identical log lines per second.
    """
    throttled = ThrottledLog(interval)
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if "accept" in str(context.get("message", "")):
            throttled.note("accept() is failing: %s", context.get("exception"))
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    return handler
