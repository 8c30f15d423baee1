"""Identity: each owner may say whether their model sees images (``vision``).

A nullable column: an existing owner keeps the deployment's ``LLM_VISION``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identity_owners") as batch:
        batch.add_column(sa.Column("vision", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identity_owners") as batch:
        batch.drop_column("vision")
