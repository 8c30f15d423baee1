"""``wta_apply_unit`` for any table in an allow-list, not just the two built-in ones.

``wta_unit_tables()`` is the allow-list: the tables a Supabase unit of work may write.
A migration that adds a table for a module replaces it with the longer list
(``allow_tables_sql``). ``wta_apply_unit`` refuses any other table name before building
a statement, and quotes every identifier with ``format('%I')``: a name taken from the
request never reaches SQL unchecked.

Operations (each re-checked in SQL; a condition that no longer holds raises ``PT409``):
``insert``, ``insert_if_new``, ``update`` (whole row, at ``version``), ``delete`` (at
``version``) and ``update_where`` (``changes`` to some columns, only while ``column``
holds one of ``expected``; the version goes up by one).

PostgreSQL only: a no-op on SQLite.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 00:00:00
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUILT_IN_TABLES = ("conversations", "messages")


def allow_tables_sql(tables: Sequence[str]) -> str:
    """The allow-list function naming exactly ``tables`` (names from migrations only)."""
    for name in tables:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a plain table name: {name!r}")
    listed = ", ".join(f"'{name}'" for name in tables)
    return f"""
CREATE OR REPLACE FUNCTION wta_unit_tables() RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $fn$ SELECT ARRAY[{listed}]::text[] $fn$;
"""


APPLY_UNIT = """
CREATE OR REPLACE FUNCTION wta_apply_unit(ops jsonb) RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $fn$
DECLARE
    i integer;
    o jsonb;
    t text;
    assignments text;
    affected integer;
BEGIN
    IF jsonb_typeof(ops) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'ops must be a JSON array' USING ERRCODE = '22023';
    END IF;
    FOR i IN 0 .. jsonb_array_length(ops) - 1 LOOP
        o := ops -> i;
        t := o ->> 'table';
        IF t IS NULL OR NOT (t = ANY(wta_unit_tables())) THEN
            RAISE EXCEPTION 'table % is not in wta_unit_tables()', t
                USING ERRCODE = '22023', HINT = 'wta_op=' || i;
        END IF;
        BEGIN
            CASE o ->> 'kind'
            WHEN 'insert' THEN
                EXECUTE format('INSERT INTO %I SELECT * FROM jsonb_populate_record(NULL::%I, $1)',
                               t, t) USING o -> 'row';
            WHEN 'insert_if_new' THEN
                EXECUTE format('INSERT INTO %I SELECT * FROM jsonb_populate_record(NULL::%I, $1) '
                               'ON CONFLICT DO NOTHING', t, t) USING o -> 'row';
                GET DIAGNOSTICS affected = ROW_COUNT;
                IF affected = 0 THEN
                    RAISE EXCEPTION 'wta_conflict' USING ERRCODE = 'PT409',
                        DETAIL = 'a unique key was taken by another writer',
                        HINT = 'wta_op=' || i;
                END IF;
            WHEN 'update' THEN
                SELECT string_agg(format('%I = r.%I', a.attname, a.attname), ', ')
                  INTO assignments
                  FROM pg_attribute AS a
                 WHERE a.attrelid = t::regclass AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attname <> 'id';
                EXECUTE format('UPDATE %I AS t SET %s FROM jsonb_populate_record(NULL::%I, $1) '
                               'AS r WHERE t.id = $2 AND t.version = $3', t, assignments, t)
                    USING o -> 'row', o ->> 'id', (o ->> 'version')::integer;
                GET DIAGNOSTICS affected = ROW_COUNT;
                IF affected = 0 THEN
                    RAISE EXCEPTION 'wta_conflict' USING ERRCODE = 'PT409',
                        DETAIL = 'the row is gone or not at the expected version',
                        HINT = 'wta_op=' || i;
                END IF;
            WHEN 'delete' THEN
                EXECUTE format('DELETE FROM %I WHERE id = $1 AND version = $2', t)
                    USING o ->> 'id', (o ->> 'version')::integer;
                GET DIAGNOSTICS affected = ROW_COUNT;
                IF affected = 0 THEN
                    RAISE EXCEPTION 'wta_conflict' USING ERRCODE = 'PT409',
                        DETAIL = 'the row is gone or not at the expected version',
                        HINT = 'wta_op=' || i;
                END IF;
            WHEN 'update_where' THEN
                -- Only the named columns change; the record fills the rest with NULLs
                -- that are never assigned.
                SELECT string_agg(format('%I = r.%I', k, k), ', ')
                  INTO assignments
                  FROM jsonb_object_keys(o -> 'changes') AS k;
                EXECUTE format('UPDATE %I AS t SET %s, version = t.version + 1 '
                               'FROM jsonb_populate_record(NULL::%I, $1) AS r '
                               'WHERE t.id = $2 AND t.%I::text IN '
                               '(SELECT jsonb_array_elements_text($3))',
                               t, assignments, t, o ->> 'column')
                    USING o -> 'changes', o ->> 'id', o -> 'expected';
                GET DIAGNOSTICS affected = ROW_COUNT;
                IF affected = 0 THEN
                    RAISE EXCEPTION 'wta_conflict' USING ERRCODE = 'PT409',
                        DETAIL = 'the row changed since it was checked',
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
    END LOOP;
    RETURN jsonb_array_length(ops);
END;
$fn$;
"""


def _on_postgres() -> bool:
    # get_context() works offline (--sql) too, unlike get_bind().
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if not _on_postgres():
        return
    op.execute(allow_tables_sql(BUILT_IN_TABLES))
    op.execute(APPLY_UNIT)


def _previous_apply_unit() -> str:
    # Migration files are not a package: load 0002 by path for its function's text.
    path = Path(__file__).with_name("0002_supabase_rpc.py")
    spec = importlib.util.spec_from_file_location("wta_migration_0002", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.APPLY_UNIT)


def downgrade() -> None:
    if not _on_postgres():
        return
    op.execute(_previous_apply_unit())
    op.execute("DROP FUNCTION IF EXISTS wta_unit_tables()")
