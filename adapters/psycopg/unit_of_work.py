"""The unit of work: one pooled connection and at most one transaction per ``async with``."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self, TypeVar, cast

from psycopg2 import sql

from adapters.psycopg.base import PsycopgRepository
from adapters.psycopg.pool import ConnectionPool
from adapters.psycopg.repositories import BUILT_IN, RepositoryClass
from adapters.psycopg.session import PgSession
from application.entities import EntityRegistry, EntitySpec
from application.ports.repository import Repository

R = TypeVar("R")
E = TypeVar("E")


class PsycopgUnitOfWork:
    """``async with uow:`` borrows a connection on its first statement; leaving without
    ``commit()`` rolls back and returns it. Re-enterable once closed, one task at a time.
    ``registry``: the entities it serves (default: the kernel's built-in ones)."""

    def __init__(
        self, pool: ConnectionPool, registry: EntityRegistry[RepositoryClass] | None = None
    ) -> None:
        self._pool = pool
        self._registry = BUILT_IN if registry is None else registry
        self._session: PgSession | None = None
        self._repositories: dict[str, PsycopgRepository[Any]] = {}

    def repository(self, port: type[R]) -> R:
        return cast(R, self._bound(*self._registry.for_port(port)))

    def repository_for(self, entity: type[E]) -> Repository[E]:
        return cast(Repository[E], self._bound(*self._registry.for_entity(entity)))

    def _bound(self, spec: EntitySpec[Any], cls: RepositoryClass) -> PsycopgRepository[Any]:
        found = self._repositories.get(spec.table)
        if found is None:
            found = self._repositories[spec.table] = cls(self._open_session(), spec)
        return found

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this unit of work is already open; use one instance per task")
        self._session = PgSession(self._pool)
        self._repositories = {}
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def commit(self) -> None:
        await self._open_session().commit()

    async def rollback(self) -> None:
        await self._open_session().rollback()

    def _open_session(self) -> PgSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use `async with uow:`")
        return self._session


async def ping(pool: ConnectionPool) -> None:
    """``SELECT 1`` on a pooled connection; raises ``StorageUnavailable`` when it cannot."""
    session = PgSession(pool)
    try:
        await session.fetch_one(sql.SQL("SELECT 1"))
    finally:
        await session.close()
