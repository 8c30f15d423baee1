"""One line per HTTP request, written once it is answered, with the request's log context.

``wta serve`` turns uvicorn's access line off for this one: the same text, plus the
status and duration as fields and whatever the request bound to its log context (request
id, trace, and for a webhook the correlation id, owner, conversation and what became of
the message). A webhook is one line, not uvicorn's plus the handler's: at a few hundred
webhooks a second a log line is a measurable share of the request's CPU.
"""

from __future__ import annotations

import logging
import time

from starlette.types import Scope

log = logging.getLogger("wta.access")


def log_request(scope: Scope, status: int, started: float) -> None:
    """``started``: ``time.perf_counter()`` when the request came in."""
    if not log.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    peer = f"{client[0]}:{client[1]}" if client else "-"
    path = scope.get("path", "")
    query = scope.get("query_string", b"")
    if query:
        path = f"{path}?{query.decode('latin-1')}"
    log.info('%s - "%s %s HTTP/%s" %d', peer, scope.get("method", ""), path,
             scope.get("http_version", "1.1"), status,
             extra={"status_code": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2)})
