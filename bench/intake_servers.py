"""The intake benchmark's reference servers, each run in its own process:

- ``bare``: a FastAPI form endpoint answering empty TwiML (the HTTP stack alone);
- ``sqlite``: bare + the twilio validator + one SQLite insert (aiosqlite, WAL, autocommit),
  the minimal durable intake of the embedded defaults;
- ``pg``: bare + the validator + one asyncpg INSERT + one Redis LPUSH, the minimal durable
  intake of postgres + arq.

``python -m bench.intake_servers KIND PORT [DSN-or-path] [REDIS_URL]``; uvicorn is run with
the options ``wta serve`` uses, so only the application differs.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from twilio.request_validator import RequestValidator

from bench.intake_load import AUTH_TOKEN, INBOUND_PATH

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SQLITE_TABLE = "CREATE TABLE IF NOT EXISTS intake (sid TEXT PRIMARY KEY, sender TEXT, body TEXT)"
PG_TABLE = "CREATE TABLE IF NOT EXISTS bench_intake (sid TEXT PRIMARY KEY, sender TEXT, body TEXT)"
REDIS_LIST = "bench:intake"


def _valid(validator: RequestValidator, request: Request, form: Any) -> bool:
    url = f"http://{request.headers['host']}{request.url.path}"
    return bool(validator.validate(url, form, request.headers.get("x-twilio-signature", "")))


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.post(INBOUND_PATH)
    async def inbound(request: Request) -> Response:
        await request.form()
        return Response(TWIML, media_type="text/xml")

    return app


def sqlite_app(path: str) -> FastAPI:
    import aiosqlite

    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute(SQLITE_TABLE)
        state["db"] = db
        yield
        await db.close()

    app = FastAPI(lifespan=lifespan)
    validator = RequestValidator(AUTH_TOKEN)

    @app.post(INBOUND_PATH)
    async def inbound(request: Request) -> Response:
        form = await request.form()
        if not _valid(validator, request, form):
            return Response(status_code=403)
        await state["db"].execute("INSERT INTO intake VALUES (?, ?, ?)",
                                  (form["MessageSid"], form["From"], form["Body"]))
        return Response(TWIML, media_type="text/xml")

    return app


def pg_app(dsn: str, redis_url: str) -> FastAPI:
    import asyncpg
    import redis.asyncio as aioredis

    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        await pool.execute(PG_TABLE)
        state["pool"], state["redis"] = pool, aioredis.Redis.from_url(redis_url)
        yield
        await pool.close()
        await state["redis"].aclose()

    app = FastAPI(lifespan=lifespan)
    validator = RequestValidator(AUTH_TOKEN)

    @app.post(INBOUND_PATH)
    async def inbound(request: Request) -> Response:
        form = await request.form()
        if not _valid(validator, request, form):
            return Response(status_code=403)
        sid = form["MessageSid"]
        await state["pool"].execute("INSERT INTO bench_intake VALUES ($1, $2, $3)",
                                    sid, form["From"], form["Body"])
        await state["redis"].lpush(REDIS_LIST, sid)
        return Response(TWIML, media_type="text/xml")

    return app


def main(argv: list[str]) -> None:
    kind, port = argv[0], int(argv[1])
    if kind == "bare":
        app = bare_app()
    elif kind == "sqlite":
        app = sqlite_app(argv[2])
    elif kind == "pg":
        app = pg_app(argv[2], argv[3])
    else:
        raise SystemExit(f"unknown server kind {kind!r}")
    uvicorn.run(app, host="127.0.0.1", port=port, proxy_headers=True, log_level="info",
                log_config=None)


if __name__ == "__main__":
    main(sys.argv[1:])
