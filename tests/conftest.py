from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bootstrap.settings import Settings

MakeSettings = Callable[..., Settings]


@pytest.fixture(autouse=True)
def _no_project_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build settings explicitly; a developer's own environment must not leak in."""
    prefixes = ("API_", "DATABASE_", "QUEUE_", "TWILIO_", "SUPABASE_", "LLM_", "CONVERSATION_",
                "LOG_", "WORKER_", "SECRET_KEY", "ALGORITHM", "ACCESS_TOKEN_", "OTEL_")
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
