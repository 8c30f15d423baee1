"""Binds the unit of work to the persistence backend the settings choose, serving every
entity the composed modules declare.

A module's repository with its own queries (an extension of the backend's generic one,
registered for the spec's port) is named per backend in the spec's
``extra["repositories"]`` as ``"package.module:Class"`` (see ``with_repositories``) and
imported only when that backend is chosen; without one, the port-less generic
repository serves the entity (``uow.repository_for(Entity)``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from lagom import Container

from application.entities import EntityRegistry, EntitySpec
from application.ports.unit_of_work import UnitOfWork
from bootstrap.module import Composition
from bootstrap.resources import Resources
from bootstrap.settings import Settings

BACKENDS = ("memory", "sqlalchemy", "postgres", "supabase")


def with_repositories(spec: EntitySpec[Any], **by_backend: str) -> EntitySpec[Any]:
    """``spec`` served, on each named backend, by the ``"module:Class"`` given for it."""
    unknown = sorted(set(by_backend) - set(BACKENDS))
    if unknown:
        raise ValueError(f"{spec.table}: unknown persistence backends {unknown}")
    return replace(spec, extra={**spec.extra, "repositories": dict(by_backend)})


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def entity_registry(
    specs: Iterable[EntitySpec[Any]], backend: str, generic: Any
) -> EntityRegistry[Any]:
    """Every spec served by its extension on ``backend``, else by ``generic``."""
    entries = []
    for spec in specs:
        path = spec.extra.get("repositories", {}).get(backend)
        if path is not None and spec.port is None:
            raise ValueError(f"{spec.table}: a repository extension needs a port to serve")
        entries.append((spec, generic if path is None else _load(path)))
    return EntityRegistry(entries)


def bind_persistence(container: Container, settings: Settings, resources: Resources) -> None:
    backend = settings.database_backend
    specs = container[Composition].entities
    if backend == "memory":
        from adapters.in_memory.repositories import InMemoryRepository, InMemoryStore
        from adapters.in_memory.unit_of_work import InMemoryUnitOfWork

        store = InMemoryStore()
        memory_registry = entity_registry(specs, backend, InMemoryRepository)
        container[InMemoryStore] = store
        container[UnitOfWork] = lambda: InMemoryUnitOfWork(
            store, memory_registry)

        async def memory_ok() -> None:
            return None

        resources.checks["database"] = memory_ok
        return
    if backend == "sqlalchemy":
        from adapters.sqlalchemy.base import SqlaRepository
        from adapters.sqlalchemy.database import open_database
        from adapters.sqlalchemy.unit_of_work import SqlaUnitOfWork

        database = open_database(
            settings.database_url,
            pool_size=settings.database_pool_max_conn,
            pool_timeout=settings.database_pool_timeout_seconds,
        )
        sessions = database.sessions
        sqla_registry = entity_registry(specs, backend, SqlaRepository)
        container[UnitOfWork] = lambda: SqlaUnitOfWork(
            sessions, sqla_registry)
        resources.checks["database"] = database.ping
        resources.closers.append(database.dispose)
        return
    if backend == "postgres":
        from adapters.psycopg.base import PsycopgRepository
        from adapters.psycopg.pool import ConnectionPool
        from adapters.psycopg.unit_of_work import PsycopgUnitOfWork
        from adapters.psycopg.unit_of_work import ping as psycopg_ping

        pool = ConnectionPool(
            settings.database_url,
            min_size=settings.database_pool_min_conn,
            max_size=settings.database_pool_max_conn,
            timeout=settings.database_pool_timeout_seconds,
        )
        pg_registry = entity_registry(specs, backend, PsycopgRepository)
        container[UnitOfWork] = lambda: PsycopgUnitOfWork(
            pool, pg_registry)
        resources.checks["database"] = lambda: psycopg_ping(pool)
        resources.closers.append(pool.close)
        return
    if backend == "supabase":
        from adapters.supabase import SupabaseConnection, SupabaseUnitOfWork
        from adapters.supabase.base import SupabaseRepository

        key = settings.supabase_service_key or settings.supabase_key
        if not settings.supabase_url or key is None:  # the settings validator refuses this
            raise ValueError("DATABASE_BACKEND=supabase needs SUPABASE_URL and a key")
        # One client per process, created on first use; its HTTP connections closed at exit.
        connection = SupabaseConnection(
            settings.supabase_url,
            key.get_secret_value(),
            schema=settings.supabase_db_schema,
            timeout_seconds=settings.supabase_timeout_seconds,
        )
        supabase_registry = entity_registry(specs, backend, SupabaseRepository)
        container[SupabaseConnection] = connection
        container[UnitOfWork] = lambda: SupabaseUnitOfWork(
            connection, supabase_registry)
        resources.checks["database"] = connection.ping
        resources.closers.append(connection.aclose)
        return
    raise NotImplementedError(f"DATABASE_BACKEND={backend} is not available yet")
