"""Initial schema: conversations and messages.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_ONLY = sa.text("status = 'open'")


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("owner_id", sa.String(128), nullable=False),
        sa.Column("contact", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
    )
    op.create_index(
        "uq_conversations_open_owner_contact",
        "conversations",
        ["owner_id", "contact"],
        unique=True,
        sqlite_where=OPEN_ONLY,
        postgresql_where=OPEN_ONLY,
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("conversation_id", sa.String(26), nullable=False),
        sa.Column("owner_id", sa.String(128), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("from_address", sa.String(128), nullable=False),
        sa.Column("to_address", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider_sid", sa.String(64), nullable=True),
        sa.Column("reply_to_id", sa.String(26), nullable=True),
        sa.Column("error_code", sa.String(32), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_messages_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reply_to_id"],
            ["messages.id"],
            name="fk_messages_reply_to_id_messages",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("provider_sid", name="uq_messages_provider_sid"),
        sa.UniqueConstraint("reply_to_id", name="uq_messages_reply_to_id"),
    )
    op.create_index("ix_messages_conversation_id_id", "messages", ["conversation_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_messages_conversation_id_id", table_name="messages")
    op.drop_table("messages")
    op.drop_index("uq_conversations_open_owner_contact", table_name="conversations")
    op.drop_table("conversations")
