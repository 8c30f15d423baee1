"""Alembic environment: runs migrations with a sync driver against the configured URL."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from adapters.sqlalchemy.engine import sync_url
from adapters.sqlalchemy.schema import build_metadata
from application.conversation_entities import ENTITIES

config = context.config
# The kernel's own entities: modules living elsewhere (tests) never reach the schema.
target_metadata = build_metadata(ENTITIES)


def _database_url() -> str:
    # The caller's explicit URL (tests, `wta migrate`) wins; plain `alembic` reads the same
    # settings as `wta` (DATABASE_BACKEND, DATABASE_URL, .env), so a libpq DSN works too.
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from bootstrap.migrator import alembic_url
        from bootstrap.settings import load_settings

        url = alembic_url(load_settings())
        if url is None:
            raise SystemExit("DATABASE_BACKEND=memory has no schema to migrate")
    return sync_url(url)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    _configure(url=_database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # A caller may hand over an open connection (config.attributes["connection"]).
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    url = _database_url()
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        # Same behaviour as the app's engine: the database's directory is created on demand.
        directory = os.path.dirname(url[len("sqlite:///") :])
        if directory:
            os.makedirs(directory, exist_ok=True)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run_with(connection)
    finally:
        engine.dispose()


# Logging from the ini file only when run from the command line, not inside the app/tests.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
