"""The PostgREST double's own protocol behaviour (the stubs have tests too)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg2
import pytest
from postgrest import APIError, AsyncPostgrestClient, CountMethod

from tests.fakes.postgrest import PostgrestDouble, headers_for

pytestmark = pytest.mark.integration

KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.ZG91YmxlLXRlc3Q"

SCHEMA = """
CREATE TABLE teams (id integer PRIMARY KEY);
CREATE TABLE items (
    id integer PRIMARY KEY,
    name text NOT NULL UNIQUE,
    score integer,
    team_id integer REFERENCES teams (id),
    at timestamptz
);
INSERT INTO teams VALUES (1);
INSERT INTO items VALUES
    (1, 'apple', 10, 1, '2024-05-01T12:00:00Z'),
    (2, 'Banana', 20, NULL, '2024-05-01T13:00:00Z'),
    (3, 'cherry, ripe', NULL, 1, NULL),
    (4, 'date', 40, NULL, '2024-05-01T15:00:00Z'),
    (5, 'elder*berry', 50, 1, '2024-05-01T16:00:00Z');
CREATE FUNCTION add_them(a integer, b integer) RETURNS integer
    LANGUAGE sql AS 'SELECT a + b';
CREATE FUNCTION items_from(min_score integer) RETURNS SETOF items
    LANGUAGE sql AS 'SELECT * FROM items WHERE score >= min_score';
CREATE FUNCTION refuse() RETURNS integer LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'no way' USING ERRCODE = 'PT409', HINT = 'h'; END $$;
"""


@pytest.fixture(scope="module")
def server() -> Iterator[PostgrestDouble]:
    with PostgrestDouble(keys=(KEY,)) as double:
        yield double


@pytest.fixture
def api(postgres_database: str, server: PostgrestDouble) -> Iterator[httpx.Client]:
    with psycopg2.connect(postgres_database) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA)
    conn.close()
    server.use_database(postgres_database)
    with httpx.Client(base_url=server.base_url + "/rest/v1", headers=dict(headers_for(KEY))
                      ) as client:
        yield client
    server.use_database(None)


def ids(response: httpx.Response) -> list[int]:
    assert response.status_code in (200, 206), response.text
    return [row["id"] for row in response.json()]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"score": "eq.20"}, [2]),
        ({"score": "neq.20"}, [1, 4, 5]),  # NULL matches no comparison
        ({"score": "gt.20"}, [4, 5]),
        ({"score": "gte.20"}, [2, 4, 5]),
        ({"score": "lt.20"}, [1]),
        ({"score": "lte.20"}, [1, 2]),
        ({"at": "gte.2024-05-01T10:00:00-03:00"}, [2, 4, 5]),
        ({"name": 'in.(apple,"cherry, ripe",nope)'}, [1, 3]),
        ({"name": "in.()"}, []),
        ({"score": "is.null"}, [3]),
        ({"score": "not.is.null"}, [1, 2, 4, 5]),
        ({"name": "like.*an*"}, [2]),
        ({"name": "like.%an%"}, [2]),
        ({"name": "ilike.b*"}, [2]),
        ({"name": "not.like.*e*"}, [2]),
        ({"team_id": "eq.1", "score": "gt.10"}, [5]),
    ],
)
def test_filters(api: httpx.Client, params: dict[str, str], expected: list[int]) -> None:
    assert ids(api.get("/items", params={"select": "*", "order": "id", **params})) == expected


def test_select_columns_and_order(api: httpx.Client) -> None:
    response = api.get("/items", params={"select": "id,score", "order": "score.desc.nullslast"})
    assert response.json()[0] == {"id": 5, "score": 50}
    assert [r["id"] for r in response.json()] == [5, 4, 2, 1, 3]
    first = api.get("/items", params={"order": "score.asc.nullsfirst,id.desc"})
    assert ids(first) == [3, 1, 2, 4, 5]


def test_range_and_exact_count(api: httpx.Client) -> None:
    partial = api.get("/items", params={"order": "id"},
                      headers={"Range-Unit": "items", "Range": "1-2", "Prefer": "count=exact"})
    assert partial.status_code == 206
    assert partial.headers["content-range"] == "1-2/5"
    assert ids(partial) == [2, 3]
    whole = api.get("/items", params={"limit": "10"}, headers={"Prefer": "count=exact"})
    assert (whole.status_code, whole.headers["content-range"]) == (200, "0-4/5")
    unknown_total = api.get("/items", params={"limit": "2", "offset": "3", "order": "id"})
    assert unknown_total.headers["content-range"] == "3-4/*"
    assert ids(unknown_total) == [4, 5]
    none = api.get("/items", params={"score": "gt.100"}, headers={"Prefer": "count=exact"})
    assert (none.json(), none.headers["content-range"]) == ([], "*/0")
    beyond = api.get("/items", params={"offset": "9"}, headers={"Prefer": "count=exact"})
    assert (beyond.status_code, beyond.json()["code"]) == (416, "PGRST103")


def test_unique_violation_is_409_in_postgrest_shape(api: httpx.Client) -> None:
    response = api.post("/items", json={"id": 9, "name": "apple"})
    assert response.status_code == 409
    body = response.json()
    assert set(body) == {"code", "details", "hint", "message"}
    assert body["code"] == "23505"
    assert "items_name_key" in body["message"]
    assert "(name)=(apple)" in body["details"]
    missing_team = api.post("/items", json={"id": 9, "name": "fig", "team_id": 7})
    assert (missing_team.status_code, missing_team.json()["code"]) == (409, "23503")


@pytest.mark.parametrize(
    "params",
    [{"nope": "eq.1"}, {"select": "id,nope"}, {"order": "nope.desc"}],
)
def test_unknown_column_is_400(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/items", params=params)
    assert response.status_code == 400
    assert response.json()["code"] == "42703"


def test_parse_errors_unknown_tables_and_schemas(api: httpx.Client) -> None:
    bad_op = api.get("/items", params={"id": "near.1"})
    assert (bad_op.status_code, bad_op.json()["code"]) == (400, "PGRST100")
    bad_order = api.get("/items", params={"order": "id.sideways"})
    assert (bad_order.status_code, bad_order.json()["code"]) == (400, "PGRST100")
    table = api.get("/nothing_here")
    assert (table.status_code, table.json()["code"]) == (404, "42P01")
    schema = api.get("/items", headers={"Accept-Profile": "private"})
    assert (schema.status_code, schema.json()["code"]) == (406, "PGRST106")


def test_writes_and_preferences(api: httpx.Client) -> None:
    created = api.post("/items", json=[{"id": 6, "name": "fig"}, {"id": 7, "name": "grape"}],
                       headers={"Prefer": "return=representation"})
    assert created.status_code == 201
    assert [r["name"] for r in created.json()] == ["fig", "grape"]
    minimal = api.post("/items", json={"id": 8, "name": "kiwi"})
    assert (minimal.status_code, minimal.content) == (201, b"")
    ignored = api.post("/items", params={"on_conflict": "name"}, json={"id": 99, "name": "kiwi"},
                       headers={"Prefer": "return=representation,resolution=ignore-duplicates"})
    assert (ignored.status_code, ignored.json()) == (201, [])
    merged = api.post("/items", json={"id": 8, "name": "kiwi", "score": 80},
                      headers={"Prefer": "return=representation,resolution=merge-duplicates"})
    assert merged.json()[0]["score"] == 80
    patched = api.patch("/items", params={"score": "is.null"}, json={"score": 0},
                        headers={"Prefer": "return=representation,count=exact"})
    assert (ids(patched), patched.headers["content-range"]) == ([3, 6, 7], "*/3")
    deleted = api.delete("/items", params={"id": "in.(6,7)"})
    assert deleted.status_code == 204
    assert ids(api.get("/items", params={"id": "gte.6", "order": "id"})) == [8]


def test_rpc(api: httpx.Client) -> None:
    scalar = api.post("/rpc/add_them", json={"a": 2, "b": 40})
    assert (scalar.status_code, scalar.json()) == (200, 42)
    rows = api.post("/rpc/items_from", params={"name": "neq.date", "order": "id.desc"},
                    json={"min_score": 20})
    assert ids(rows) == [5, 2]
    missing = api.post("/rpc/add_them", json={"a": 1})
    assert (missing.status_code, missing.json()["code"]) == (404, "PGRST202")
    refused = api.post("/rpc/refuse", json={})
    assert refused.status_code == 409
    assert refused.json() == {"code": "PT409", "details": None, "hint": "h", "message": "no way"}


@pytest.mark.parametrize(
    "headers",
    [
        {"apikey": "wrong"},
        {"apikey": KEY, "Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {KEY}"},
    ],
)
def test_bad_api_key_is_401(server: PostgrestDouble, api: httpx.Client,
                            headers: dict[str, str]) -> None:
    response = httpx.get(server.base_url + "/rest/v1/items", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "PGRST301"
    assert KEY not in response.text


async def test_the_official_client_reads_counts_and_errors(
    api: httpx.Client, server: PostgrestDouble
) -> None:
    async with AsyncPostgrestClient(server.base_url + "/rest/v1", headers=dict(headers_for(KEY))
                                    ) as client:
        page: Any = await (client.table("items").select("*", count=CountMethod.exact)
                           .gt("score", 10).order("id").range(0, 1).execute())
        assert ([r["id"] for r in page.data], page.count) == ([2, 4], 3)
        head: Any = await client.table("items").select("id", count=CountMethod.exact,
                                                        head=True).execute()
        assert head.count == 5
        with pytest.raises(APIError) as info:
            await client.table("items").insert({"id": 1, "name": "again"}).execute()
        assert info.value.code == "23505"
