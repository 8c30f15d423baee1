"""What entry points own besides the container: health checks to run, things to close."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[Any]]
Check = Callable[[], Awaitable[None]]


@dataclass
class Resources:
    """What the entry points need besides the container: checks to run, things to close."""

    checks: dict[str, Check] = field(default_factory=dict)
    closers: list[Closer] = field(default_factory=list)

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            try:
                await close()
            except Exception:
                log.exception("error while closing a resource")
        self.closers.clear()
