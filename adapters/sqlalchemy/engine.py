"""Engine construction: async drivers for the app, the plain sync driver for Alembic."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import event, exc, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from application.errors import StorageUnavailable

# Deliberately generic: driver messages can carry host names, users or the whole URL.
UNAVAILABLE_MESSAGE = "the database is unavailable"

# Sync driver name -> its async counterpart. A bare backend name means the default driver.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
_SYNC_DRIVERS = {
    "sqlite+aiosqlite": "sqlite",
    "postgresql+asyncpg": "postgresql+psycopg2",
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
}


def _normalise(url: str) -> URL:
    # Heroku-style "postgres://" is not a SQLAlchemy dialect name; treat it as postgresql.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    return make_url(url)


def async_url(url: str) -> URL:
    """The URL with its async driver (unchanged when it already names one)."""
    parsed = _normalise(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def sync_url(url: str) -> str:
    """The URL with a plain sync driver (pysqlite, psycopg2), for Alembic."""
    parsed = _normalise(url)
    driver = _SYNC_DRIVERS.get(parsed.drivername)
    if driver:
        parsed = parsed.set(drivername=driver)
    return parsed.render_as_string(hide_password=False)


def sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_engine_for(url: str, *, pool_size: int = 10, pool_timeout: float = 10.0) -> AsyncEngine:
    """An async engine for ``url`` (given with either a sync or an async driver).

    Creating it touches nothing: connections open on first use, and a SQLite file's
    directory is created then, so an unusable path surfaces as ``StorageUnavailable``
    (e.g. from ``ping``) instead of failing start-up.
    """
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(parsed)
        if path is None:
            # One in-memory database shared by every session: the dialect's single-connection
            # pool, which takes no size arguments.
            engine = create_async_engine(parsed)
        else:
            engine = create_async_engine(parsed, pool_size=pool_size, pool_timeout=pool_timeout)
        _configure_sqlite(engine, path)
        return engine
    # Network databases drop idle connections; test each one before handing it out. The pool
    # never grows past pool_size (the configured maximum), and a connection attempt to a
    # server that does not answer gives up after pool_timeout instead of asyncpg's minute.
    return create_async_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        connect_args={"timeout": pool_timeout} if parsed.drivername.endswith("asyncpg") else {},
    )


# Every SQLite connection of either engine. LIKE is case-sensitive on Postgres, and the
# repository contract makes it so here too; synchronous=NORMAL is safe with WAL (a power
# loss may drop the last commits, never corrupt).
SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys=ON",
    "PRAGMA case_sensitive_like=ON",
    "PRAGMA synchronous=NORMAL",
)


def _configure_sqlite(engine: AsyncEngine, path: Path | None) -> None:
    sync_engine = engine.sync_engine
    wal = path is not None

    @event.listens_for(sync_engine, "do_connect")
    def _make_directory(*_args: Any) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, decides when transactions begin (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if wal:
                # Readers never block the writer and vice versa; survives restarts.
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes
        # fails with SQLITE_BUSY on lock upgrade instead of waiting on busy_timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Entities are plain dataclasses built from rows; nothing to expire after commit.
    return async_sessionmaker(engine, expire_on_commit=False)


# SQLSTATE classes and codes that mean the database itself is unusable, not the statement:
# connection failures, resources, operator intervention, system errors, a missing database
# or login, and a schema that was never migrated (undefined table or column).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "28", "53", "57", "58", "3D")
_UNAVAILABLE_SQLSTATES = frozenset({"42P01", "42703", "42883"})


def sqlstate(error: BaseException) -> str | None:
    """The Postgres SQLSTATE of a wrapped driver error (asyncpg and psycopg2 spell it apart)."""
    orig = getattr(error, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return str(code) if code else None


def is_connectivity_error(error: BaseException) -> bool:
    """True for failures of the database itself (unreachable, locked, pool exhausted)."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    code = sqlstate(error)
    if code and (code.startswith(_UNAVAILABLE_SQLSTATE_CLASSES) or code in _UNAVAILABLE_SQLSTATES):
        return True
    return isinstance(
        error,
        exc.OperationalError
        | exc.InterfaceError
        | exc.DisconnectionError
        | exc.TimeoutError
        | OSError,
    )


class translate_errors:  # lower case: used as a function, ``with translate_errors():``
    """Re-raise connectivity failures (or, with ``any_error``, every database error) as
    ``StorageUnavailable``; everything else passes through untouched.

    A class, not ``@contextmanager``: it wraps every statement, and a generator-based
    context manager costs about three times as much to enter and leave.
    """

    __slots__ = ("_any_error",)

    def __init__(self, *, any_error: bool = False) -> None:
        self._any_error = any_error

    def __enter__(self) -> None:
        return None

    # Returns None, never True: an error it does not translate goes on as it was.
    def __exit__(self, exc_type: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if error is None or not isinstance(error, Exception):
            return
        if isinstance(error, StorageUnavailable):
            return
        if isinstance(error, exc.StatementError):
            if type(error) is exc.StatementError and isinstance(error.orig,
                                                                ValueError | TypeError):
                # A value refused while binding parameters (a naive datetime): the caller's
                # bug, reported as the plain error it is, like the in-memory adapter does.
                raise error.orig from None
            if is_connectivity_error(error) or self._any_error:
                raise StorageUnavailable(UNAVAILABLE_MESSAGE) from error
            return
        if is_connectivity_error(error) or (
                self._any_error and isinstance(error, exc.SQLAlchemyError)):
            raise StorageUnavailable(UNAVAILABLE_MESSAGE) from error


async def ping(engine: AsyncEngine) -> None:
    """Run ``SELECT 1``; raises ``StorageUnavailable`` when the database cannot answer."""
    with translate_errors(any_error=True):
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
