"""Indexes for every query the flow makes, so none of them scans a whole table.

Before this, the check made before each send (has the contact opted out?) read the whole
``messages`` table: with 200,000 earlier messages a reply cost about 36 ms of CPU on
SQLite, and PostgreSQL ran a sequential scan per reply. The sweeps' queries scanned too,
and so did the internal API's page of one owner's conversations.

On PostgreSQL the indexes are built ``CONCURRENTLY``, outside the migration's
transaction: a deployment with a large table keeps taking messages while they build.
A build that fails leaves an invalid index; ``wta migrate`` again drops and rebuilds it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("messages", ("to_address", "from_address", "error_code")),
    ("messages", ("from_address", "to_address", "created_at")),
    ("messages", ("status", "created_at")),
    ("conversations", ("owner_id", "id")),
)


def index_name(table: str, columns: Sequence[str]) -> str:
    # application.entities.index_name's convention, frozen here as this revision built it.
    return f"ix_{table}_{'_'.join(columns)}"


def create_indexes(indexes: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Plain on SQLite; on PostgreSQL ``CONCURRENTLY``, outside the transaction (migration
    0008 builds its index with this too)."""
    if op.get_context().dialect.name != "postgresql":
        for table, columns in indexes:
            op.create_index(index_name(table, columns), table, list(columns))
        return
    with op.get_context().autocommit_block():
        for table, columns in indexes:
            # A concurrent build interrupted earlier leaves an invalid index behind.
            op.drop_index(index_name(table, columns), table, if_exists=True,
                          postgresql_concurrently=True)
            op.create_index(index_name(table, columns), table, list(columns),
                            postgresql_concurrently=True)


def drop_indexes(indexes: Sequence[tuple[str, Sequence[str]]]) -> None:
    for table, columns in reversed(indexes):
        op.drop_index(index_name(table, columns), table)


def upgrade() -> None:
    create_indexes(INDEXES)


def downgrade() -> None:
    drop_indexes(INDEXES)
