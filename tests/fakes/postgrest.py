"""A PostgREST protocol double: the HTTP API Supabase serves under ``/rest/v1``.

This is not PostgREST. It is a small test server that answers the requests the official
``supabase``/``postgrest`` Python clients send, the way PostgREST documents them, on top
of a real PostgreSQL database (psycopg2, one transaction per request, identifiers and
values composed with ``psycopg2.sql``). Only tables and functions of the exposed schemas
are reachable. Implemented:

- ``GET``/``HEAD /rest/v1/<table>``: ``select=*`` or a column list; filters
  ``eq neq gt gte lt lte like ilike`` (``*`` as ``%``), ``in.(a,"b,c")``,
  ``is.null|true|false|unknown``, each negatable with ``not.``; ``order=col.asc|desc
  [.nullsfirst|.nullslast]``; ``limit``/``offset`` and the ``Range`` header; a
  ``Content-Range`` on every answer, with the total under ``Prefer: count=exact`` (206
  when that is a part of the rows); ``Accept: application/vnd.pgrst.object+json``.
- ``POST /rest/v1/<table>``: one object or an array, ``columns=``, ``Prefer:
  return=representation|minimal``, ``resolution=ignore-duplicates|merge-duplicates`` with
  ``on_conflict=`` (default: the primary key).
- ``PATCH``/``DELETE /rest/v1/<table>`` with the same filters and ``Prefer: return=``.
- ``POST /rest/v1/rpc/<function>`` with a JSON object of named arguments; set-returning
  functions accept the read filters above.
- ``Accept-Profile``/``Content-Profile`` choose among the exposed schemas (406 otherwise).
- ``apikey`` (and, when sent, ``Authorization: Bearer``) must be one of the configured
  keys: 401 otherwise.
- Errors as ``{"code", "details", "hint", "message"}`` with PostgREST's status mapping
  (23505/23503 -> 409, 42P01 -> 404, 42703 -> 400, ``PTxyz`` -> xyz, PGRST100 -> 400...).

Not implemented: embedding, ``or``/``and`` trees, JSON paths, casts, aliases, CSV, JWT
claims/roles, ``Prefer: tx=``, and everything else PostgREST does.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.pool
from psycopg2 import sql
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.postgrest_sql import (
    ApiError,
    Relation,
    order_clause,
    prefer,
    requested_range,
    row_columns,
    select_list,
    where_clause,
)
from tests.fakes.threaded_server import ThreadedServer

SINGLE_OBJECT = "application/vnd.pgrst.object+json"


def status_for(sqlstate: str) -> int:
    """PostgREST's documented SQLSTATE -> HTTP status mapping."""
    exact = {"23503": 409, "23505": 409, "25006": 405, "42883": 404, "42P01": 404,
             "42501": 403, "P0001": 400, "53400": 500}
    if sqlstate in exact:
        return exact[sqlstate]
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    prefixes = {"08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500,
                "38": 500, "39": 500, "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500,
                "57": 500, "58": 500, "F0": 500, "HV": 500, "P0": 500, "XX": 500}
    return prefixes.get(sqlstate[:2], 400)


def _db_error(error: psycopg2.Error) -> ApiError:
    diag = error.diag
    code = error.pgcode or "08000"
    message = diag.message_primary or str(error).strip()
    return ApiError(status_for(code), code, message, diag.message_detail, diag.message_hint)


def _error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body, status_code=error.status)


class PostgrestDouble:
    """Serves the protocol on 127.0.0.1 (free port) from a uvicorn thread.

    ``base_url`` is what the supabase client takes as ``SUPABASE_URL``. Point it at a
    database with ``use_database(dsn)`` (reloads the schema cache, like PostgREST's
    ``NOTIFY pgrst``); tests can switch databases without restarting the server.
    """

    def __init__(self, *, keys: tuple[str, ...], schemas: tuple[str, ...] = ("public",)
                 ) -> None:
        if not keys:
            raise ValueError("at least one API key is required")
        self.keys = frozenset(keys)
        self.schemas = schemas
        self.base_url = ""
        self._dsn: str | None = None
        self._pool: psycopg2.pool.ThreadedConnectionPool | None = None
        self._cache: dict[tuple[str, str], Relation] = {}
        self._lock = threading.Lock()
        methods = ["GET", "HEAD", "POST", "PATCH", "DELETE"]
        self.app = Starlette(routes=[
            Route("/rest/v1/rpc/{function}", self._rpc, methods=["POST"]),
            Route("/rest/v1/{table}", self._table, methods=methods),
        ])
        self._http = ThreadedServer(self.app, "postgrest-double")

    # -- database ------------------------------------------------------------------------

    def use_database(self, dsn: str | None) -> None:
        """Serve ``dsn`` from now on (None: no database, answers 503); closes the old pool."""
        with self._lock:
            old, self._pool = self._pool, None
            self._dsn, self._cache = dsn, {}
        if old is not None:
            old.closeall()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._lock:
            if self._dsn is None:
                raise ApiError(503, "PGRST000", "Database connection error")
            if self._pool is None:
                self._pool = psycopg2.pool.ThreadedConnectionPool(4, 20, self._dsn)
            pool = self._pool
        try:
            conn = pool.getconn()
        except psycopg2.Error as error:
            raise ApiError(503, "PGRST000", "Database connection error") from error
        try:
            with conn:  # one transaction per request: commit, or roll back on error
                yield conn
        except psycopg2.Error as error:
            raise _db_error(error) from error
        except ValueError as error:
            if "NUL" not in str(error):
                raise
            # psycopg2 refuses NUL before sending; PostgreSQL answers PostgREST's JSON with
            # 22P05 for it, a 400 (not the 500 of a crashed handler).
            raise ApiError(400, "22P05", "unsupported Unicode escape sequence",
                           "\\u0000 cannot be converted to text.") from error
        finally:
            pool.putconn(conn)

    def _relation(self, conn: Any, schema: str, name: str) -> Relation:
        key = (schema, name)
        if key not in self._cache:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
                    " coalesce(a.attnum = ANY(i.indkey), false)"
                    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary"
                    " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'v')"
                    " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                    (schema, name),
                )
                rows = cur.fetchall()
            if not rows:
                raise ApiError(404, "42P01", f'relation "{schema}.{name}" does not exist')
            self._cache[key] = Relation(
                schema, name, {r[0]: r[1] for r in rows}, tuple(r[0] for r in rows if r[2])
            )
        return self._cache[key]

    # -- request plumbing ----------------------------------------------------------------

    def _authorize(self, request: Request) -> None:
        key = request.headers.get("apikey")
        auth = request.headers.get("authorization")
        bearer = auth.partition(" ")[2] if auth and auth.lower().startswith("bearer ") else None
        if key not in self.keys or (auth is not None and bearer not in self.keys):
            raise ApiError(401, "PGRST301", "Invalid API key", None,
                           "Double check your apikey and Authorization headers")

    def _schema(self, request: Request, writing: bool) -> str:
        header = request.headers.get("content-profile" if writing else "accept-profile")
        if header is None:
            return self.schemas[0]
        if header not in self.schemas:
            raise ApiError(406, "PGRST106", "Invalid schema: " + header, None,
                           "Only the following schemas are exposed: " + ", ".join(self.schemas))
        return header

    async def _handle(self, request: Request, work: Any) -> Response:
        try:
            self._authorize(request)
            body = await request.body()
            return await run_in_threadpool(work, request, body)
        except ApiError as error:
            return _error_response(error)

    async def _table(self, request: Request) -> Response:
        return await self._handle(request, self._table_sync)

    async def _rpc(self, request: Request) -> Response:
        return await self._handle(request, self._rpc_sync)

    # -- tables ---------------------------------------------------------------------------

    def _table_sync(self, request: Request, body: bytes) -> Response:
        writing = request.method not in ("GET", "HEAD")
        schema = self._schema(request, writing)
        with self._connection() as conn:
            relation = self._relation(conn, schema, request.path_params["table"])
            if request.method in ("GET", "HEAD"):
                return self._read(conn, request, relation, relation.qualified)
            if request.method == "POST":
                return self._insert(conn, request, relation, _json_body(body))
            if request.method == "PATCH":
                return self._update(conn, request, relation, _json_body(body))
            return self._delete(conn, request, relation)

    def _read(self, conn: Any, request: Request, relation: Relation,
              source: sql.Composable) -> Response:
        params = list(request.query_params.multi_items())
        query = dict(params)
        offset, limit = requested_range(query, request.headers)
        where = where_clause(relation, params)
        inner = sql.SQL("SELECT {} FROM {} AS {}{}{}").format(
            select_list(relation, query.get("select")), source, sql.Identifier(relation.name),
            where, order_clause(relation, query.get("order")),
        )
        if limit is not None:
            inner += sql.SQL(" LIMIT {}").format(sql.Literal(limit))
        if offset:
            inner += sql.SQL(" OFFSET {}").format(sql.Literal(offset))
        total: int | None = None
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT coalesce(json_agg(t), '[]')::text, count(*) FROM ({}) t")
                        .format(inner))
            text, returned = cur.fetchone()
            if prefer(request.headers).get("count") == "exact":
                cur.execute(sql.SQL("SELECT count(*) FROM {} AS {}{}").format(
                    source, sql.Identifier(relation.name), where))
                total = cur.fetchone()[0]
        if total is not None and offset > 0 and offset >= total:
            raise ApiError(416, "PGRST103", "Requested range not satisfiable",
                           f"An offset of {offset} was requested, but there are only {total} rows.")
        headers = {"Content-Range": _content_range(offset, returned, total)}
        partial = total is not None and returned < total
        if request.headers.get("accept", "").startswith(SINGLE_OBJECT):
            rows = json.loads(text)
            if len(rows) != 1:
                raise ApiError(406, "PGRST116", "JSON object requested, multiple (or no) rows "
                               "returned", f"The result contains {len(rows)} rows")
            text = json.dumps(rows[0])
        return Response(text, 206 if partial else 200, headers, "application/json")

    def _insert(self, conn: Any, request: Request, relation: Relation, payload: Any) -> Response:
        rows = payload if isinstance(payload, list) else [payload]
        if not rows or not all(isinstance(r, dict) for r in rows):
            raise ApiError(400, "PGRST102", "Empty or invalid json")
        query = dict(request.query_params)
        names = row_columns(relation, rows, query.get("columns"))
        cols = sql.SQL(", ").join(sql.Identifier(n) for n in names)
        stmt = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM json_populate_recordset(NULL::{}, {})"
                       ).format(relation.qualified, cols, cols, relation.qualified,
                                sql.Literal(json.dumps(rows)))
        preferences = prefer(request.headers)
        resolution = preferences.get("resolution")
        if resolution in ("ignore-duplicates", "merge-duplicates"):
            target = ([c.strip() for c in query["on_conflict"].split(",")]
                      if query.get("on_conflict") else list(relation.primary_key))
            conflict = sql.SQL(", ").join(sql.Identifier(c) for c in target)
            for c in target:
                relation.column(c)
            if resolution == "ignore-duplicates":
                stmt += sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(conflict)
            else:
                sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n))
                                          for n in names)
                stmt += sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(conflict, sets)
        return self._write(conn, request, stmt, 201)

    def _update(self, conn: Any, request: Request, relation: Relation, payload: Any) -> Response:
        if not isinstance(payload, dict):
            raise ApiError(400, "PGRST102", "Empty or invalid json")
        names = row_columns(relation, [payload], None)
        sets = sql.SQL(", ").join(sql.SQL("{0} = r.{0}").format(sql.Identifier(n)) for n in names)
        stmt = sql.SQL("UPDATE {} SET {} FROM json_populate_record(NULL::{}, {}) AS r{}").format(
            relation.qualified, sets, relation.qualified, sql.Literal(json.dumps(payload)),
            where_clause(relation, list(request.query_params.multi_items())),
        )
        return self._write(conn, request, stmt, 200, returning=sql.SQL("{}.*").format(
            sql.Identifier(relation.name)))

    def _delete(self, conn: Any, request: Request, relation: Relation) -> Response:
        stmt = sql.SQL("DELETE FROM {}{}").format(
            relation.qualified, where_clause(relation, list(request.query_params.multi_items())))
        return self._write(conn, request, stmt, 200)

    def _write(self, conn: Any, request: Request, stmt: sql.Composable, ok: int,
               returning: sql.Composable | None = None) -> Response:
        stmt = sql.SQL("WITH w AS ({} RETURNING {}) SELECT coalesce(json_agg(w), '[]')::text,"
                       " count(*) FROM w").format(stmt, returning or sql.SQL("*"))
        with conn.cursor() as cur:
            cur.execute(stmt)
            text, affected = cur.fetchone()
        preferences = prefer(request.headers)
        headers = {"Content-Range": f"*/{affected}" if preferences.get("count") else "*/*"}
        if preferences.get("return") == "representation":
            return Response(text, ok, headers, "application/json")
        return Response(None, 201 if ok == 201 else 204, headers)

    # -- rpc ------------------------------------------------------------------------------

    def _rpc_sync(self, request: Request, body: bytes) -> Response:
        schema = self._schema(request, writing=True)
        name = request.path_params["function"]
        args = _json_body(body) if body else {}
        if not isinstance(args, dict):
            raise ApiError(400, "PGRST102", "Empty or invalid json")
        with self._connection() as conn:
            signature = self._function(conn, schema, name, sorted(args))
            arg_types, returns_set, composite, result_type = signature
            call = sql.SQL("{}({})").format(
                sql.Identifier(schema, name),
                sql.SQL(", ").join(
                    sql.SQL("{} := {}::{}").format(
                        sql.Identifier(arg), _argument(args[arg], arg_types[arg]),
                        sql.SQL(arg_types[arg]),
                    )
                    for arg in sorted(args)
                ),
            )
            if not (returns_set or composite):
                with conn.cursor() as cur:
                    cur.execute(sql.SQL("SELECT to_json({})::text").format(call))
                    return Response(cur.fetchone()[0], 200, {}, "application/json")
            relation = self._relation(conn, schema, result_type) if composite else Relation(
                schema, name, {name: result_type})
            return self._read(conn, request, relation, call)

    def _function(self, conn: Any, schema: str, name: str, arg_names: list[str]
                  ) -> tuple[dict[str, str], bool, bool, str]:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT coalesce(p.proargnames[1:p.pronargs], '{}'),"
                " array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t),"
                " p.proretset, rt.typtype = 'c', rt.typname, p.pronargdefaults"
                " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " JOIN pg_type rt ON rt.oid = p.prorettype"
                " WHERE n.nspname = %s AND p.proname = %s",
                (schema, name),
            )
            given = set(arg_names)
            for names, types, returns_set, composite, result_type, defaults in cur.fetchall():
                # Like PostgREST: trailing arguments with defaults may be left out.
                required = set(names[:len(names) - defaults])
                if required <= given <= set(names):
                    return dict(zip(names, types, strict=True)), returns_set, composite, result_type
        raise ApiError(404, "PGRST202",
                       f"Could not find the function {schema}.{name}({', '.join(arg_names)})"
                       " in the schema cache", None,
                       "If a new function was created in the database with this name and "
                       "parameters, try reloading the schema cache.")

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> PostgrestDouble:
        self._http.start(timeout)
        self.base_url = self._http.base_url
        return self

    def stop(self) -> None:
        self._http.stop()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.closeall()

    def __enter__(self) -> PostgrestDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as error:
        raise ApiError(400, "PGRST102", "Empty or invalid json") from error


def _argument(value: Any, sql_type: str) -> sql.Composable:
    """A bound value for an argument of ``sql_type``, cast by the caller."""
    if value is None:
        return sql.SQL("NULL")
    if sql_type in ("json", "jsonb") or isinstance(value, dict):
        return sql.Literal(json.dumps(value))
    if isinstance(value, list):
        return sql.Literal([v if v is None else str(v) for v in value])
    return sql.Literal(value if isinstance(value, bool | int | float) else str(value))


def _content_range(offset: int, returned: int, total: int | None) -> str:
    shown = f"{offset}-{offset + returned - 1}" if returned else "*"
    return f"{shown}/{'*' if total is None else total}"


def headers_for(key: str, schema: str | None = None) -> Mapping[str, str]:
    """What a Supabase client sends: ``apikey`` plus the same key as a bearer token."""
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    if schema:
        headers["Accept-Profile"] = schema
        headers["Content-Profile"] = schema
    return headers
