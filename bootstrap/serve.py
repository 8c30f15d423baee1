"""``wta serve``: uvicorn with the edge's bounds (timeouts, connection cap, header size)."""

from __future__ import annotations

import asyncio
import logging
import resource

import uvicorn
from fastapi import FastAPI

from adapters.fastapi.server import guarded_protocol, throttle_accept_errors
from bootstrap.settings import Settings

log = logging.getLogger(__name__)

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
        # create_app configured logging; uvicorn's own config would bypass the redactor.
        log_config=None,
    )


def serve(app: FastAPI, settings: Settings, *, host: str, port: int) -> None:
    config = server_config(app, settings, host=host, port=port, fd_limit=raise_fd_limit())
    server = uvicorn.Server(config)

    async def run() -> None:
        throttle_accept_errors(asyncio.get_running_loop(),
                               settings.api_accept_error_log_interval_seconds)
        await server.serve()

    asyncio.run(run())
