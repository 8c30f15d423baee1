"""The unit of work: one AsyncSession and its transaction per ``async with`` block."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar, cast

from adapters.sqlalchemy.base import SqlaRepository
from adapters.sqlalchemy.engine import translate_errors
from adapters.sqlalchemy.repositories import BUILT_IN, RepositoryClass
from application.entities import EntityRegistry, EntitySpec
from application.ports.repository import Repository

R = TypeVar("R")
E = TypeVar("E")


class SqlaUnitOfWork:
    """``async with uow:`` opens a session; leaving it without ``commit()`` rolls back.

    The object can be entered again once closed (use cases run several short units in a
    row), but not by two tasks at once: give each concurrent task its own instance.
    ``registry``: the entities it serves (default: the kernel's built-in ones).
    """

    def __init__(
        self,
        session_factory: Callable[[], Any],
        registry: EntityRegistry[RepositoryClass] | None = None,
    ) -> None:
        # An async_sessionmaker, or a LoopSessionFactory (SQLite files on the loop thread).
        self._session_factory = session_factory
        self._registry = BUILT_IN if registry is None else registry
        self._session: Any = None
        self._repositories: dict[str, SqlaRepository[Any]] = {}

    def repository(self, port: type[R]) -> R:
        return cast(R, self._bound(*self._registry.for_port(port)))

    def repository_for(self, entity: type[E]) -> Repository[E]:
        return cast(Repository[E], self._bound(*self._registry.for_entity(entity)))

    def _bound(self, spec: EntitySpec[Any], cls: RepositoryClass) -> SqlaRepository[Any]:
        found = self._repositories.get(spec.table)
        if found is None:
            found = self._repositories[spec.table] = cls(self._open_session(), spec)
        return found

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this unit of work is already open; use one instance per task")
        # The transaction begins with the first statement (SQLAlchemy's autobegin), and
        # again after a commit or rollback inside the block.
        self._session = self._session_factory()
        self._repositories = {}
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        self._abandon()  # what was written since the last commit is rolled back
        try:
            # close() rolls back whatever was not committed and returns the connection.
            with translate_errors():
                await session.close()
        except Exception:
            if exc is None:
                raise
            # Keep the original error: a failed cleanup after a failure is the lesser news.

    async def commit(self) -> None:
        with translate_errors():
            await self._open_session().commit()
        for repository in self._repositories.values():
            repository.saved()

    async def rollback(self) -> None:
        self._abandon()
        with translate_errors():
            await self._open_session().rollback()

    def _abandon(self) -> None:
        for repository in self._repositories.values():
            repository.abandoned()

    def _open_session(self) -> Any:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use `async with uow:`")
        return self._session
