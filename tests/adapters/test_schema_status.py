"""The schema check: Alembic's revision in the database against the packaged heads."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from adapters.fastapi.health import NotReady
from adapters.sqlalchemy.engine import sync_url
from application.errors import SchemaBehind
from bootstrap.migrator import alembic_config, revisions
from bootstrap.schema import BEHIND_STATUS, SchemaState, SchemaStatus, schema_status_for
from tests.conftest import MakeSettings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingStatus(SchemaStatus):
    reads = 0

    def _read_sync(self) -> SchemaState:
        self.reads += 1
        return super()._read_sync()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return sync_url(request.getfixturevalue("postgres_database"))
    return f"sqlite:///{tmp_path / 'app.db'}"


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url, configure_logger=False), revision)


async def test_behind_until_migrated_then_current_and_no_longer_read(url: str) -> None:
    clock = Clock()
    status = CountingStatus(url, recheck_seconds=2.0, clock=clock)
    try:
        assert await status.read() is SchemaState.BEHIND
        with pytest.raises(NotReady, match=r"^behind \(run wta migrate\)$"):
            await status.check()
        with pytest.raises(SchemaBehind):
            await status.require_current()

        upgrade(url)
        reads = status.reads
        # Requests keep the cached answer until it is stale; readiness reads afresh.
        with pytest.raises(SchemaBehind):
            await status.require_current()
        assert status.reads == reads
        clock.now += 2.0
        await status.require_current()
        assert status.state is SchemaState.CURRENT

        reads = status.reads
        clock.now += 3600
        for _ in range(5):
            await status.check()
            await status.require_current()
        assert status.reads == reads  # current is kept: no query per request or probe
    finally:
        status.close()


async def test_an_older_revision_is_behind(url: str) -> None:
    oldest = min(revisions().known)
    upgrade(url, oldest)
    status = SchemaStatus(url)
    try:
        assert await status.read() is SchemaState.BEHIND
    finally:
        status.close()


async def test_a_revision_this_code_does_not_know_is_ahead_and_ready(url: str) -> None:
    upgrade(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    engine.dispose()
    status = SchemaStatus(url)
    try:
        assert await status.read() is SchemaState.AHEAD
        await status.check()
        await status.require_current()
    finally:
        status.close()


async def test_an_unmigrated_sqlite_file_is_not_created_by_the_check(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "app.db"
    status = SchemaStatus(f"sqlite:///{path}")
    assert await status.read() is SchemaState.BEHIND
    assert not path.parent.exists()


async def test_an_unreachable_database_is_unknown_and_lets_requests_meet_their_own_error(
) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    status = SchemaStatus("postgresql+psycopg2://nobody@127.0.0.1:9/none")
    try:
        assert await status.read() is None
        with pytest.raises(NotReady, match=r"^unknown \(OperationalError\)$"):
            await status.check()
        await status.require_current()  # not refused as SCHEMA_BEHIND
    finally:
        status.close()


def test_which_backends_are_checked(make_settings: MakeSettings) -> None:
    assert schema_status_for(make_settings(database_backend="memory")) is None
    supabase = {"database_backend": "supabase", "supabase_url": "http://sb", "supabase_key": "k"}
    # Supabase without the Postgres connection string the migrations use: nothing to check.
    assert schema_status_for(make_settings(**supabase)) is None
    assert schema_status_for(make_settings(**supabase, database_url="postgresql://db/x"))
    assert schema_status_for(make_settings()) is not None
    assert BEHIND_STATUS == "behind (run wta migrate)"
