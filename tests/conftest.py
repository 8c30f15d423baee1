from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bootstrap.settings import Settings

MakeSettings = Callable[..., Settings]


@pytest.fixture(autouse=True)
def _no_project_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build settings explicitly; a developer's own environment must not leak in."""
    prefixes = ("API_", "DATABASE_", "QUEUE_", "TWILIO_", "SUPABASE_", "LLM_", "CONVERSATION_",
                "LOG_", "WORKER_", "SECRET_KEY", "ALGORITHM", "ACCESS_TOKEN_", "OTEL_",
                "APP_MODULES", "BILLING_", "IDENTITY_")
    for key in list(os.environ):
        if key.startswith(prefixes):
            monkeypatch.delenv(key)


@pytest.fixture
def make_settings(tmp_path: Path) -> MakeSettings:
    """Settings on files under tmp_path (SQLite database and queue), never reading .env."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "api_environment": "test",
            "database_url": f"sqlite:///{tmp_path / 'app.db'}",
            "queue_sqlite_db_path": str(tmp_path / "queue.db"),
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- Real services -----------------------------------------------------------------------
# PostgreSQL and Redis run on 127.0.0.1 on development and CI machines. Tests that need
# them skip with a reason on a laptop without them, and fail when CI is set.

POSTGRES_ADMIN_DSN = os.environ.get(
    "TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _unavailable(service: str, error: BaseException) -> None:
    message = f"{service} is not reachable: {type(error).__name__}: {error}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: .ci/run should have started it)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_admin_dsn() -> str:
    """DSN of the shared `test` database, after checking the server answers."""
    import psycopg2

    try:
        psycopg2.connect(POSTGRES_ADMIN_DSN, connect_timeout=3).close()
    except psycopg2.Error as exc:
        _unavailable("PostgreSQL", exc)
    return POSTGRES_ADMIN_DSN


@contextlib.contextmanager
def fresh_postgres_database(admin_dsn: str, prefix: str = "wta_test") -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its DSN, drop it (connections too)."""
    import uuid

    import psycopg2
    from psycopg2 import sql

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(admin_dsn)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield admin_dsn.rsplit("/", 1)[0] + f"/{name}"
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
    finally:
        admin.close()


@pytest.fixture
def postgres_database(postgres_admin_dsn: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards. Yields its DSN."""
    with fresh_postgres_database(postgres_admin_dsn) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis URL on a database number the tests own (flushed by the tests that use it)."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)
    return REDIS_TEST_URL
