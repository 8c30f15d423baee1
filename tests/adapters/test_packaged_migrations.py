"""One set of migrations: the packaged one, which the repository's alembic.ini points at."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from bootstrap.migrator import CONFIG_FILE, DIRECTORY, alembic_config, revisions

ROOT = Path(__file__).resolve().parents[2]


def test_the_repository_config_and_the_packaged_one_use_the_same_scripts() -> None:
    repo = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini")))
    packaged = ScriptDirectory.from_config(alembic_config())
    assert Path(repo.dir).resolve() == Path(packaged.dir).resolve() == DIRECTORY
    assert CONFIG_FILE.parent == DIRECTORY
    assert set(repo.get_heads()) == set(revisions().heads) and revisions().heads


def test_no_migration_is_left_in_the_top_level_alembic_directory() -> None:
    # Migrations written there (an old habit, or a merge) would never ship nor run.
    assert list((ROOT / "alembic").rglob("*.py")) == []
