"""The event loop the long-running processes (``wta serve``, ``wta worker``) run on.

uvloop when it is installed (it is a dependency on Linux and macOS): the API process
spends about a fifth of its CPU in the loop's own bookkeeping (selector, transports,
handles) under load, which uvloop does in C. The standard loop otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # Windows, or an install without it
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
