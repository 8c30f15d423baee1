"""In-memory unit of work: copy the committed tables on enter, publish them on commit."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self, TypeVar, cast

from adapters.in_memory.conversation_repositories import BUILT_IN, RepositoryClass
from adapters.in_memory.repositories import InMemoryRepository, InMemoryStore, Tables
from application.entities import EntityRegistry, EntitySpec
from application.ports.repository import Repository

R = TypeVar("R")
E = TypeVar("E")


class InMemoryUnitOfWork:
    """Same contract as the SQL unit of work.

    Units are serialized by the store's lock for their whole duration, so a unit sees no
    concurrent change and racing inserts are decided one after the other, as under
    SQLite's ``BEGIN IMMEDIATE``. Like the SQL one it may be entered again once closed,
    but a task must not open a second unit on the same store while one is open (it would
    wait for itself). ``registry``: the entities it serves (default: the built-in ones).
    """

    def __init__(
        self, store: InMemoryStore, registry: EntityRegistry[RepositoryClass] | None = None
    ) -> None:
        self._store = store
        self._registry = BUILT_IN if registry is None else registry
        self._work: Tables | None = None
        self._repositories: dict[str, InMemoryRepository[Any]] = {}

    def repository(self, port: type[R]) -> R:
        return cast(R, self._bound(*self._registry.for_port(port)))

    def repository_for(self, entity: type[E]) -> Repository[E]:
        return cast(Repository[E], self._bound(*self._registry.for_entity(entity)))

    def _bound(self, spec: EntitySpec[Any], cls: RepositoryClass) -> InMemoryRepository[Any]:
        # Bound to ``_tables`` (not to one copy): usable across rollbacks and re-entries.
        found = self._repositories.get(spec.table)
        if found is None:
            found = self._repositories[spec.table] = cls(self._tables, spec)
        return found

    async def __aenter__(self) -> Self:
        if self._work is not None:
            raise RuntimeError("this unit of work is already open; use one instance per task")
        await self._store.lock.acquire()
        self._work = self._store.committed.copy()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Whatever was not committed is simply dropped with the working copy.
        if self._work is None:
            return
        self._work = None
        self._store.lock.release()

    async def commit(self) -> None:
        work = self._tables()
        self._store.committed = work.copy()

    async def rollback(self) -> None:
        self._tables()
        self._work = self._store.committed.copy()

    def _tables(self) -> Tables:
        if self._work is None:
            raise RuntimeError("the unit of work is not open: use `async with uow:`")
        return self._work
