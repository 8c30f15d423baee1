"""Runs the Alembic migrations shipped inside the package (``bootstrap/migrations/``).

They live in the package rather than only in the repository so that every install (a
wheel, a container image) can create and upgrade its schema from any working directory.
That directory is Alembic's, not a Python package: its scripts are loaded by Alembic only.
Its ``alembic.ini`` is the packaged configuration, so after any install
``alembic -c "$(wta migrate --config)" upgrade head`` works too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

    from bootstrap.settings import Settings

DIRECTORY = Path(__file__).resolve().parent / "migrations"
CONFIG_FILE = DIRECTORY / "alembic.ini"


def alembic_url(settings: Settings) -> str | None:
    """The URL Alembic migrates for these settings; None for a backend without a schema."""
    if settings.database_backend == "memory":
        return None
    url = settings.database_url
    if settings.database_backend == "postgres":
        from adapters.psycopg.dsn import sqlalchemy_url

        # DATABASE_URL is then a libpq DSN (or URL); Alembic needs a SQLAlchemy URL.
        url = sqlalchemy_url(url)
    from adapters.sqlalchemy.engine import sync_url

    return sync_url(url)


def alembic_config(url: str | None = None, *, configure_logger: bool = True) -> Config:
    """The packaged configuration, aimed at ``url`` (else env.py asks the settings)."""
    from alembic.config import Config

    config = Config(str(CONFIG_FILE))
    if url:
        # ConfigParser interpolation: a % in a password must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    # Inside a running app the app's logging stays; only the command line takes the ini's.
    config.attributes["configure_logger"] = configure_logger
    return config


def migrate(settings: Settings, revision: str = "head", *, configure_logger: bool = True) -> None:
    """Apply the migrations up to ``revision``; nothing for the memory backend."""
    url = alembic_url(settings)
    if url is None:
        return
    from alembic import command

    command.upgrade(alembic_config(url, configure_logger=configure_logger), revision)


@dataclass(frozen=True)
class Revisions:
    heads: frozenset[str]  # what this code expects the database to be at
    known: frozenset[str]  # every revision this code ships


@cache
def revisions() -> Revisions:
    """Read once per process: the scripts do not change while it runs."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(DIRECTORY))
    return Revisions(
        heads=frozenset(script.get_heads()),
        known=frozenset(rev.revision for rev in script.walk_revisions()),
    )
