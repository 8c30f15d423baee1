"""The sweep for lost replies reads only recent messages, through an index.

``awaiting_reply`` (inbound messages with no reply yet) read every inbound message ever
stored, once per sweep (every minute): about 63 ms on SQLite and 80 ms on PostgreSQL with
200,000 earlier messages, growing with the table. It now takes a lower bound (``since``),
served by an index on created_at (not (direction, created_at): SQLite's planner, without
statistics, would pick that one for any query naming a direction, such as the check
before each send, and read half the table). On PostgreSQL ``wta_awaiting_reply`` (the
Supabase backend's call, migration 0002) takes the same bound as ``newer_than``, NULL by
default, so a caller that does not pass it reads as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (("messages", ("created_at",)),)
OLD_SIGNATURE = "wta_awaiting_reply(timestamptz, integer, text[])"
NEW_SIGNATURE = "wta_awaiting_reply(timestamptz, integer, text[], timestamptz)"

AWAITING_REPLY = """
CREATE OR REPLACE FUNCTION wta_awaiting_reply(
    older_than timestamptz, max_rows integer, ignored_reply_ids text[],
    newer_than timestamptz DEFAULT NULL
) RETURNS SETOF messages
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $fn$
    SELECT m.* FROM messages AS m
    WHERE m.direction = 'inbound' AND m.created_at < older_than
      AND (newer_than IS NULL OR m.created_at >= newer_than)
      AND NOT EXISTS (
          SELECT 1 FROM messages AS r
          WHERE r.reply_to_id = m.id AND r.id <> ALL(coalesce(ignored_reply_ids, '{}'))
      )
    ORDER BY m.id
    LIMIT max_rows;
$fn$;
"""


def _migration(filename: str) -> ModuleType:
    # Migration files are not a package: load a sibling by path (0002's function, 0007's
    # index builder).
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"wta_migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _on_postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if _on_postgres():
        # One function: an overload beside the old one would make a 3-argument call
        # ambiguous.
        op.execute(f"DROP FUNCTION IF EXISTS {OLD_SIGNATURE}")
        op.execute(AWAITING_REPLY)
    _migration("0007_query_indexes.py").create_indexes(INDEXES)


def downgrade() -> None:
    _migration("0007_query_indexes.py").drop_indexes(INDEXES)
    if _on_postgres():
        op.execute(f"DROP FUNCTION IF EXISTS {NEW_SIGNATURE}")
        op.execute(str(_migration("0002_supabase_rpc.py").AWAITING_REPLY))
