"""Liveness and readiness. Readiness checks each dependency with a short timeout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]


class NotReady(Exception):
    """Raised by a check to report its own status text, e.g. ``behind (run wta migrate)``."""


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


def make_router(checks: Mapping[str, Check], timeout: float = 2.0) -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready", responses={
        200: {"model": Readiness, "description": "Every dependency answers"},
        503: {"model": Readiness, "description": "A dependency is unavailable"},
    })
    async def ready() -> JSONResponse:
        async def run(name: str, check: Check) -> tuple[str, str]:
            try:
                await asyncio.wait_for(check(), timeout)
                return name, "ok"
            except NotReady as exc:
                log.warning("readiness check %s: %s", name, exc)
                return name, str(exc)
            except Exception as exc:
                # The error's class only: its text may hold a connection string.
                log.warning("readiness check %s failed: %s", name, type(exc).__name__)
                return name, f"unavailable ({type(exc).__name__})"

        results = dict(await asyncio.gather(*(run(n, c) for n, c in checks.items())))
        healthy = all(v == "ok" for v in results.values())
        return JSONResponse(
            {"status": "ok" if healthy else "unavailable", "checks": results},
            status_code=200 if healthy else 503,
        )

    return router
