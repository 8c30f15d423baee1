"""Binds the unit of work to the persistence backend the settings choose."""

from __future__ import annotations

from lagom import Container

from application.ports.unit_of_work import UnitOfWork
from bootstrap.resources import Resources
from bootstrap.settings import Settings


def bind_persistence(container: Container, settings: Settings, resources: Resources) -> None:
    backend = settings.database_backend
    if backend == "memory":
        from adapters.in_memory.repositories import InMemoryStore
        from adapters.in_memory.unit_of_work import InMemoryUnitOfWork

        store = InMemoryStore()
        container[InMemoryStore] = store
        container[UnitOfWork] = lambda: InMemoryUnitOfWork(store)  # type: ignore[assignment]

        async def memory_ok() -> None:
            return None

        resources.checks["database"] = memory_ok
        return
    if backend == "sqlalchemy":
        from adapters.sqlalchemy.database import open_database
        from adapters.sqlalchemy.unit_of_work import SqlaUnitOfWork

        database = open_database(
            settings.database_url,
            pool_size=settings.database_pool_max_conn,
            pool_timeout=settings.database_pool_timeout_seconds,
        )
        sessions = database.sessions
        container[UnitOfWork] = lambda: SqlaUnitOfWork(sessions)  # type: ignore[assignment]
        resources.checks["database"] = database.ping
        resources.closers.append(database.dispose)
        return
    if backend == "postgres":
        from adapters.psycopg.pool import ConnectionPool
        from adapters.psycopg.unit_of_work import PsycopgUnitOfWork
        from adapters.psycopg.unit_of_work import ping as psycopg_ping

        pool = ConnectionPool(
            settings.database_url,
            min_size=settings.database_pool_min_conn,
            max_size=settings.database_pool_max_conn,
            timeout=settings.database_pool_timeout_seconds,
        )
        container[UnitOfWork] = lambda: PsycopgUnitOfWork(pool)  # type: ignore[assignment]
        resources.checks["database"] = lambda: psycopg_ping(pool)
        resources.closers.append(pool.close)
        return
    if backend == "supabase":
        from adapters.supabase import SupabaseConnection, SupabaseUnitOfWork

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
        container[SupabaseConnection] = connection
        container[UnitOfWork] = lambda: SupabaseUnitOfWork(connection)  # type: ignore[assignment]
        resources.checks["database"] = connection.ping
        resources.closers.append(connection.aclose)
        return
    raise NotImplementedError(f"DATABASE_BACKEND={backend} is not available yet")
