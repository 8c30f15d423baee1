"""``wta serve``: uvicorn with the edge's bounds (timeouts, connection cap, header size)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
import time
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from adapters.fastapi.server import guarded_protocol, throttle_accept_errors
from bootstrap import event_loop
from bootstrap.heap import settle_for_serving
from bootstrap.settings import Settings

log = logging.getLogger(__name__)

# A process that dies sooner than this after its start is not replaced (see serve_processes).
RESPAWN_AFTER_SECONDS = 5.0
# Descriptors kept free for the database pool, the queue, log files and the listener.
FD_RESERVE = 64


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one; returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def server_config(app: FastAPI, settings: Settings, *, host: str, port: int,
                  fd_limit: int) -> uvicorn.Config:
    # Never more connections than descriptors: past the cap, idle ones are shed instead
    # of accept() failing.
    max_connections = max(1, min(settings.api_max_connections, fd_limit - FD_RESERVE))
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(header_timeout=settings.api_header_timeout_seconds,
                              max_connections=max_connections),
        # Forwarded headers are judged by API_TRUSTED_PROXIES where they matter (the
        # signature URL); uvicorn must not rewrite the peer address before that.
        proxy_headers=False,
        timeout_keep_alive=max(1, round(settings.api_keepalive_timeout_seconds)),
        backlog=settings.api_backlog,
        h11_max_incomplete_event_size=settings.api_max_header_bytes,
        log_level=settings.log_level.lower(),
        # The app writes its own access line, with the request's context (access_log.py).
        access_log=False,
        # create_app configured logging; uvicorn's own config would bypass the redactor.
        log_config=None,
    )


def serve(app: FastAPI, settings: Settings, *, host: str, port: int,
          sock: socket.socket | None = None) -> None:
    config = server_config(app, settings, host=host, port=port, fd_limit=raise_fd_limit())
    server = uvicorn.Server(config)

    async def run() -> None:
        throttle_accept_errors(asyncio.get_running_loop(),
                               settings.api_accept_error_log_interval_seconds)
        settle_for_serving()
        await server.serve(sockets=[sock] if sock else None)

    event_loop.run(run())


def serve_processes(build_app: Callable[[], FastAPI], settings: Settings, *, host: str,
                    port: int, processes: int) -> int:
    """``wta serve --workers N``: N forked processes accepting on one listening socket.

    uvicorn's own ``workers=`` spawns fresh interpreters and must pickle its config, which
    the guarded protocol class is not; forking after the bind keeps every bound above in
    each process. A process that dies is replaced; SIGTERM/SIGINT stop them all (each
    drains as a single ``wta serve`` would).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family, backlog=settings.api_backlog)
    listener.set_inheritable(True)
    stopping = False

    def start() -> int:
        pid = os.fork()
        if pid == 0:  # the child: its own app, loop and connections
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                serve(build_app(), settings, host=host, port=port, sock=listener)
                code = 0
            finally:
                os._exit(code)
        return pid

    started: dict[int, float] = {}

    def launch() -> None:
        started[start()] = time.monotonic()

    for _ in range(processes):
        launch()
    children = started.keys()

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worst = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        lived = time.monotonic() - started.pop(pid, 0.0)
        code = os.waitstatus_to_exitcode(status)
        worst = max(worst, abs(code))
        if stopping:
            continue
        if lived < RESPAWN_AFTER_SECONDS:
            # Dying at start (bad settings, port taken): replacing it would loop forever.
            log.error("API process %d exited with %d at start; stopping", pid, code)
            stop(signal.SIGTERM, None)
            continue
        log.error("API process %d exited with %d; starting another", pid, code)
        launch()
    listener.close()
    return worst
