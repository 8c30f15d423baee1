"""Alembic: the migrations build exactly the schema the kernel's entity declarations
describe (autogenerate finds no difference), and walk down and up again."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, create_engine, inspect, text

from adapters.sqlalchemy.engine import sync_url
from adapters.sqlalchemy.schema import build_metadata
from bootstrap.cli import migrate
from bootstrap.modules.identity import MODULE as IDENTITY
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from tests.conftest import MakeSettings

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
# Built fresh from the declarations: modules' tables (tests) never join it.
metadata = build_metadata((*WHATSAPP.entities, *IDENTITY.entities))
SHIPPED = {"alembic_version", "conversations", "messages", *(s.table for s in IDENTITY.entities)}


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    return config


def schema_diff(url: str, target: MetaData) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, target))
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    # Every test below runs on an empty SQLite file and on an empty PostgreSQL database.
    if request.param == "postgresql":
        return sync_url(request.getfixturevalue("postgres_database"))
    return f"sqlite:///{tmp_path / 'db' / 'app.db'}"


def test_upgrade_downgrade_upgrade(url: str) -> None:
    config = alembic_config(url)
    command.upgrade(config, "head")
    assert tables(url) == SHIPPED
    command.downgrade(config, "base")
    assert tables(url) == {"alembic_version"}
    command.upgrade(config, "head")
    assert tables(url) == SHIPPED


def test_stairway_each_revision_down_and_up(url: str) -> None:
    config = alembic_config(url)
    revisions = list(ScriptDirectory.from_config(config).walk_revisions("base", "heads"))
    assert revisions, "no migrations found"
    for revision in reversed(revisions):
        command.upgrade(config, revision.revision)
        down = revision.down_revision
        command.downgrade(config, down if isinstance(down, str) else "base")
        command.upgrade(config, revision.revision)


def test_migrated_schema_matches_the_entity_declarations(url: str) -> None:
    command.upgrade(alembic_config(url), "head")
    assert schema_diff(url, metadata) == []


def test_the_comparison_would_notice_a_difference(url: str) -> None:
    # Guards the test above against comparing nothing at all.
    command.upgrade(alembic_config(url), "head")
    changed = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["messages"].append_column(Column("extra", Integer, nullable=True))
    diff = schema_diff(url, changed)
    assert any(op[0] == "add_column" and op[3].name == "extra" for op in diff)  # type: ignore[index]


def test_database_url_environment_is_used_when_config_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "from-env" / "app.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    config = Config(str(ALEMBIC_INI))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    assert "messages" in tables(f"sqlite:///{path}")


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["postgres", "sqlalchemy"])
def test_wta_migrate_on_postgres(
    backend: str, postgres_database: str, make_settings: MakeSettings
) -> None:
    # The raw backend takes a libpq key=value DSN; SQLAlchemy a postgresql:// URL.
    parts = urlsplit(postgres_database)
    dsn = (f"host={parts.hostname} port={parts.port} user={parts.username} "
           f"dbname={parts.path.lstrip('/')}")
    settings = make_settings(database_backend=backend,
                             database_url=dsn if backend == "postgres" else postgres_database)
    migrate(settings)
    url = sync_url(postgres_database)
    assert {"conversations", "messages"} <= tables(url)
    assert schema_diff(url, metadata) == []


def test_0004_keeps_existing_conversations_and_reads_them_as_held_by_the_bot(
    url: str,
) -> None:
    config = alembic_config(url)
    command.upgrade(config, "0003")
    engine = create_engine(url)
    row = {"id": "01J00000000000000000000001", "owner_id": "AC1", "contact": "whatsapp:+1",
           "channel": "whatsapp:+2", "status": "open", "created_at": "2026-01-01 00:00:00",
           "updated_at": "2026-01-01 00:00:00", "last_message_at": "2026-01-01 00:00:00",
           "version": 3}
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO conversations (id, owner_id, contact, channel, status, created_at,"
                " updated_at, last_message_at, version) VALUES (:id, :owner_id, :contact,"
                " :channel, :status, :created_at, :updated_at, :last_message_at, :version)"),
                row)
        command.upgrade(config, "head")
        with engine.connect() as connection:
            stored = connection.execute(text(
                "SELECT id, version, holder, held_until, needs_person, closed_reason"
                " FROM conversations")).one()
    finally:
        engine.dispose()
    assert tuple(stored) == (row["id"], 3, None, None, False, None)
