from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self, TypeVar

from application.ports.repository import Repository

R = TypeVar("R")
E = TypeVar("E")


class UnitOfWork(Protocol):
    """A transaction over the repositories of every registered entity.

    ``async with uow:`` opens it; leaving the block without ``commit()`` (or by an
    exception) rolls everything back, so nothing of a failed unit is visible afterwards.
    A unit of work object may be entered again after it closed.

    ``repository(port)`` is the repository registered for that port (an entity's
    ``EntitySpec.port``, e.g. ``MessageRepository``); ``repository_for(Invoice)`` the
    generic ``Repository`` of any registered entity. Both raise ``LookupError`` naming
    what is not registered.
    """

    def repository(self, port: type[R]) -> R: ...

    def repository_for(self, entity: type[E]) -> Repository[E]: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...
