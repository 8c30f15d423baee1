"""Identity: owners, their sender numbers, plans, usage and the directory revision.

Only adds tables: an existing single-owner database keeps every conversation and message
(their ``owner_id`` is the account SID, the id the identity module provisions the
default owner under on first use). On PostgreSQL the Supabase unit-of-work allow-list
(``wta_unit_tables()``, migration 0003) grows by these tables.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("identity_owners", "identity_numbers", "identity_plans", "identity_usage",
          "identity_revision")


def _id() -> sa.Column[str]:
    return sa.Column("id", sa.String(64), nullable=False)


def _version() -> sa.Column[int]:
    return sa.Column("version", sa.Integer(), nullable=False)


def _migration_0003() -> ModuleType:
    # Migration files are not a package: load 0003 by path for its allow-list helper.
    path = Path(__file__).with_name("0003_generic_apply_unit.py")
    spec = importlib.util.spec_from_file_location("wta_migration_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _on_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "identity_owners",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("account_sid", sa.String(64), nullable=False),
        sa.Column("sealed_token", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=True),
        sa.Column("answers", sa.Boolean(), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("reply_language", sa.String(35), nullable=True),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("fallback_message", sa.Text(), nullable=True),
        sa.Column("closing_message", sa.Text(), nullable=True),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_identity_owners"),
    )
    op.create_table(
        "identity_numbers",
        _id(),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_identity_numbers"),
        # A sender number belongs to exactly one owner.
        sa.UniqueConstraint("number", name="uq_identity_numbers_number"),
    )
    op.create_table(
        "identity_plans",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("assistant", sa.Boolean(), nullable=False),
        sa.Column("media", sa.Boolean(), nullable=False),
        sa.Column("monthly_quota", sa.Integer(), nullable=True),
        sa.Column("over_quota", sa.String(16), nullable=False),
        sa.Column("notice", sa.Text(), nullable=True),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_identity_plans"),
    )
    op.create_table(
        "identity_usage",
        _id(),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.Column("notices", sa.Integer(), nullable=False),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_identity_usage"),
    )
    op.create_table(
        "identity_revision",
        _id(),
        sa.Column("revision", sa.Integer(), nullable=False),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_identity_revision"),
    )
    if _on_postgres():
        previous = _migration_0003()
        op.execute(previous.allow_tables_sql((*previous.BUILT_IN_TABLES, *TABLES)))


def downgrade() -> None:
    if _on_postgres():
        previous = _migration_0003()
        op.execute(previous.allow_tables_sql(previous.BUILT_IN_TABLES))
    for table in reversed(TABLES):
        op.drop_table(table)
