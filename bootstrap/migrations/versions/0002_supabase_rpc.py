"""Postgres functions the Supabase adapter calls through PostgREST's ``rpc/``.

``wta_apply_unit(ops jsonb)`` applies every write of one unit of work in one transaction,
checking each write's condition in SQL (version, expected status, insert-or-nothing). A
condition that no longer holds raises SQLSTATE ``PT409`` (PostgREST answers 409), so the
whole unit is rolled back. Unique and foreign-key violations keep their SQLSTATE and name
the failing operation in the hint (``wta_op=<index>``).

``wta_awaiting_reply`` is the one read PostgREST's filters cannot express (NOT EXISTS).

PostgreSQL only: a no-op on SQLite. Functions are not part of the SQLAlchemy metadata, so
autogenerate comparisons do not see them.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ``SET search_path FROM CURRENT`` pins the tables to the schema this migration ran in,
# whatever search path the PostgREST role has.
APPLY_UNIT = """
CREATE OR REPLACE FUNCTION wta_apply_unit(ops jsonb) RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $fn$
DECLARE
    i integer;
    o jsonb;
    applied integer := 0;
BEGIN
    IF jsonb_typeof(ops) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'ops must be a JSON array' USING ERRCODE = '22023';
    END IF;
    FOR i IN 0 .. jsonb_array_length(ops) - 1 LOOP
        o := ops -> i;
        BEGIN
            CASE o ->> 'kind'
            WHEN 'insert' THEN
                IF o ->> 'table' = 'conversations' THEN
                    INSERT INTO conversations
                    SELECT * FROM jsonb_populate_record(NULL::conversations, o -> 'row');
                ELSE
                    INSERT INTO messages
                    SELECT * FROM jsonb_populate_record(NULL::messages, o -> 'row');
                END IF;
            WHEN 'insert_if_new' THEN
                IF o ->> 'table' = 'conversations' THEN
                    INSERT INTO conversations
                    SELECT * FROM jsonb_populate_record(NULL::conversations, o -> 'row')
                    ON CONFLICT DO NOTHING;
                ELSE
                    INSERT INTO messages
                    SELECT * FROM jsonb_populate_record(NULL::messages, o -> 'row')
                    ON CONFLICT DO NOTHING;
                END IF;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'wta_conflict' USING ERRCODE = 'PT409',
                        DETAIL = 'a unique key was taken by another writer',
                        HINT = 'wta_op=' || i;
                END IF;
            WHEN 'update' THEN
                IF o ->> 'table' = 'conversations' THEN
                    UPDATE conversations AS t SET
                        owner_id = r.owner_id, contact = r.contact, channel = r.channel,
                        status = r.status, created_at = r.created_at,
                        updated_at = r.updated_at, last_message_at = r.last_message_at,
                        version = r.version
                    FROM jsonb_populate_record(NULL::conversations, o -> 'row') AS r
                    WHERE t.id = o ->> 'id' AND t.version = (o ->> 'version')::integer;
                ELSE
                    UPDATE messages AS t SET
                        conversation_id = r.conversation_id, owner_id = r.owner_id,
                        direction = r.direction, type = r.type, body = r.body,
                        from_address = r.from_address, to_address = r.to_address,
                        status = r.status, provider_sid = r.provider_sid,
                        reply_to_id = r.reply_to_id, error_code = r.error_code,
                        metadata = r.metadata, created_at = r.created_at,
                        updated_at = r.updated_at, version = r.version
                    FROM jsonb_populate_record(NULL::messages, o -> 'row') AS r
                    WHERE t.id = o ->> 'id' AND t.version = (o ->> 'version')::integer;
                END IF;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'wta_conflict' USING ERRCODE = 'PT409',
                        DETAIL = 'the row is gone or not at the expected version',
                        HINT = 'wta_op=' || i;
                END IF;
            WHEN 'delete' THEN
                IF o ->> 'table' = 'conversations' THEN
                    DELETE FROM conversations
                    WHERE id = o ->> 'id' AND version = (o ->> 'version')::integer;
                ELSE
                    DELETE FROM messages
                    WHERE id = o ->> 'id' AND version = (o ->> 'version')::integer;
                END IF;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'wta_conflict' USING ERRCODE = 'PT409',
                        DETAIL = 'the row is gone or not at the expected version',
                        HINT = 'wta_op=' || i;
                END IF;
            WHEN 'set_status' THEN
                UPDATE messages SET
                    status = o ->> 'status',
                    updated_at = (o ->> 'at')::timestamptz,
                    version = version + 1,
                    provider_sid = coalesce(o ->> 'provider_sid', provider_sid),
                    error_code = coalesce(o ->> 'error_code', error_code)
                WHERE id = o ->> 'id'
                  AND status IN (SELECT jsonb_array_elements_text(o -> 'expected'));
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'wta_conflict' USING ERRCODE = 'PT409',
                        DETAIL = 'the status changed since it was checked',
                        HINT = 'wta_op=' || i;
                END IF;
            ELSE
                RAISE EXCEPTION 'unknown operation %', o ->> 'kind' USING ERRCODE = '22023';
            END CASE;
        EXCEPTION WHEN unique_violation OR foreign_key_violation THEN
            -- Same error, plus which operation failed, for the adapter to translate.
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM,
                HINT = 'wta_op=' || i;
        END;
        applied := applied + 1;
    END LOOP;
    RETURN applied;
END;
$fn$;
"""

AWAITING_REPLY = """
CREATE OR REPLACE FUNCTION wta_awaiting_reply(
    older_than timestamptz, max_rows integer, ignored_reply_ids text[]
) RETURNS SETOF messages
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $fn$
    SELECT m.* FROM messages AS m
    WHERE m.direction = 'inbound' AND m.created_at < older_than
      AND NOT EXISTS (
          SELECT 1 FROM messages AS r
          WHERE r.reply_to_id = m.id AND r.id <> ALL(coalesce(ignored_reply_ids, '{}'))
      )
    ORDER BY m.id
    LIMIT max_rows;
$fn$;
"""


def _on_postgres() -> bool:
    # get_context() works offline (--sql) too, unlike get_bind().
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if not _on_postgres():
        return
    op.execute(APPLY_UNIT)
    op.execute(AWAITING_REPLY)


def downgrade() -> None:
    if not _on_postgres():
        return
    op.execute("DROP FUNCTION IF EXISTS wta_awaiting_reply(timestamptz, integer, text[])")
    op.execute("DROP FUNCTION IF EXISTS wta_apply_unit(jsonb)")
