"""Is the database at the schema revision this code ships? Read cheaply, and cached.

Alembic's own records answer it: the database's ``alembic_version`` against the heads of
the packaged scripts. Once the schema is current the answer is kept for the life of the
process (no query per request or probe); while it is behind or unreadable, readiness
reads it on each probe and requests at most every ``recheck_seconds``, so ``wta migrate``
makes a running API ready without a restart.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, make_url, pool

from adapters.fastapi.health import NotReady
from application.errors import SchemaBehind
from bootstrap.migrator import Revisions, alembic_url, migrate, revisions
from bootstrap.settings import Settings

log = logging.getLogger(__name__)
# Alembic announces each of its plugins at INFO when first used: not news in the app's log.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

BEHIND_STATUS = "behind (run wta migrate)"
CONNECT_TIMEOUT_SECONDS = 5


class SchemaState(enum.Enum):
    CURRENT = "current"
    BEHIND = "behind"  # older than the code, or never migrated
    AHEAD = "ahead"  # at a revision this code does not know: a newer release migrated it


class SchemaStatus:
    def __init__(
        self,
        url: str,
        expected: Revisions | None = None,
        *,
        recheck_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = make_url(url)
        self._expected = expected or revisions()
        self._recheck = recheck_seconds
        self._clock = clock
        self._engine: Engine | None = None
        self._lock = asyncio.Lock()
        self._state: SchemaState | None = None  # None: never read successfully
        self._error: str | None = None
        self._read_at: float | None = None

    @property
    def state(self) -> SchemaState | None:
        """The last answer, without reading anything."""
        return self._state

    async def read(self, max_age: float | None = None) -> SchemaState | None:
        """The cached answer, read again first when it may have changed and is older than
        ``max_age`` (default ``recheck_seconds``; 0: read now)."""
        age = self._recheck if max_age is None else max_age
        if self._fresh(age):
            return self._state
        async with self._lock:
            if self._fresh(age):  # another caller read it meanwhile
                return self._state
            try:
                self._state = await asyncio.to_thread(self._read_sync)
                self._error = None
            except Exception as exc:
                # The class only: a driver's message may hold the connection string.
                self._error = type(exc).__name__
            finally:
                self._read_at = self._clock()
        return self._state

    async def check(self) -> None:
        """Readiness: ``ok`` when current (or ahead), else a status naming what to do.

        Probes are periodic already: each one reads afresh until the schema is current."""
        state = await self.read(max_age=0)
        if state is SchemaState.BEHIND:
            raise NotReady(BEHIND_STATUS)
        if state is None:
            raise NotReady(f"unknown ({self._error or 'not read yet'})")

    async def require_current(self) -> None:
        """Guard for requests that need storage: a schema known to be behind refuses them.

        Requests read at most every ``recheck_seconds``. An unreadable schema lets the
        request through: it then meets the storage's own error (an outage is not a
        schema problem)."""
        if await self.read() is SchemaState.BEHIND:
            raise SchemaBehind("the database schema is behind this code: run `wta migrate`")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def _fresh(self, max_age: float) -> bool:
        if self._state in (SchemaState.CURRENT, SchemaState.AHEAD):
            return True  # only a migration by this code's release moves it, and that is done
        return self._read_at is not None and self._clock() - self._read_at < max_age

    def _read_sync(self) -> SchemaState:
        from alembic.migration import MigrationContext

        database = self._url.database
        if self._url.get_backend_name() == "sqlite" and database and database != ":memory:" \
                and not database.startswith("file:") and not Path(database).exists():
            return SchemaState.BEHIND  # never created: do not create an empty file to say so
        if self._engine is None:
            args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS} \
                if self._url.get_backend_name() == "postgresql" else {}
            self._engine = create_engine(self._url, poolclass=pool.NullPool, connect_args=args)
        with self._engine.connect() as connection:
            heads = frozenset(MigrationContext.configure(connection).get_current_heads())
        if heads == self._expected.heads:
            return SchemaState.CURRENT
        if heads - self._expected.known:
            return SchemaState.AHEAD
        return SchemaState.BEHIND


class SchemaGuardedUseCase:
    """The same ``execute``, refused with ``SchemaBehind`` while the schema is behind.

    Wrapped around the API's use cases, so the check comes after authentication and
    signature validation, and only for requests that reach storage."""

    def __init__(self, inner: Any, status: SchemaStatus) -> None:
        self._inner = inner
        self._status = status

    async def execute(self, request: Any) -> Any:
        await self._status.require_current()
        return await self._inner.execute(request)


def schema_status_for(settings: Settings) -> SchemaStatus | None:
    """None where there is no schema to check: the memory backend, or Supabase without the
    Postgres connection string (DATABASE_URL) the migrations use."""
    if settings.database_backend == "supabase" and not settings.database_url.startswith(
        "postgres"
    ):
        return None
    url = alembic_url(settings)
    return SchemaStatus(url) if url else None


async def prepare_schema(settings: Settings, status: SchemaStatus) -> None:
    """API start-up: migrate when API_AUTO_MIGRATE is on, then log where the schema stands."""
    if settings.auto_migrate:
        try:
            await asyncio.to_thread(migrate, settings, configure_logger=False)
            log.info("API_AUTO_MIGRATE: the database schema was migrated to head")
        except Exception:
            log.exception("API_AUTO_MIGRATE: migrating the database failed")
    await log_schema_state(status)


async def log_schema_state(status: SchemaStatus) -> None:
    state = await status.read(max_age=0)
    if state is SchemaState.BEHIND:
        log.error("the database schema is behind this code: run `wta migrate` (until then "
                  "the API answers 503 SCHEMA_BEHIND to requests that need storage)")
    elif state is SchemaState.AHEAD:
        log.warning("the database schema is at a revision this code does not know "
                    "(a newer release migrated it); carrying on")
    elif state is None:
        log.warning("could not read the database schema revision; readiness will retry")
    else:
        log.info("the database schema is current")


async def log_schema_at_start(settings: Settings) -> None:
    """For processes without readiness (the worker): one line saying where the schema is."""
    status = schema_status_for(settings)
    if status is None:
        return
    try:
        await log_schema_state(status)
    finally:
        status.close()
