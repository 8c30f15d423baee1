"""Alembic driven from tests: the schema every SQL backend's tests run on."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from adapters.sqlalchemy.engine import sync_url

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    # ConfigParser interpolation: a % in the URL must be doubled.
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def migrate(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)
