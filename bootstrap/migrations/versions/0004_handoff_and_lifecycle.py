"""Conversations: who holds them (handoff), the fallback's flag, why they closed.

Only adds columns: existing rows read as held by the bot, not flagged, and closed for no
recorded reason. Numbered 0005 after 0003 so it can be rebased behind another 0004.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("holder", sa.String(128), nullable=True))
        batch.add_column(sa.Column("held_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("held_until", sa.DateTime(timezone=True), nullable=True))
        # The server default fills the rows already there; the kernel always writes it.
        batch.add_column(sa.Column("needs_person", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("closed_reason", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        for name in ("closed_reason", "needs_person", "held_until", "held_since", "holder"):
            batch.drop_column(name)
