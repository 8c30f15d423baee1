"""A span around a use case's ``execute``, named for the use case class."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Tracer


class TracedUseCase:
    """Same ``execute`` as the wrapped use case; errors are recorded and re-raised."""

    def __init__(self, inner: Any, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer
        self._name = type(inner).__name__

    async def execute(self, request: Any) -> Any:
        with self._tracer.start_as_current_span(
            self._name, attributes={"code.function.name": f"{self._name}.execute"}
        ):
            return await self._inner.execute(request)
