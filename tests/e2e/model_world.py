"""A worker process answering through the fake model server, on SQLite or on
arq + PostgreSQL: the world the assistant's end-to-end tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.e2e.test_worker_process import World
from tests.fakes.fake_llm import DEFAULT_API_KEY, FakeLLMServer
from tests.fakes.fake_twilio import FakeTwilioServer

BACKENDS = ["sqlite", "arq+postgres"]


def model_world(request: pytest.FixtureRequest, tmp_path: Path, llm: FakeLLMServer,
                twilio: FakeTwilioServer, **extra: str) -> Iterator[World]:
    """For a fixture parametrized with ``BACKENDS``: a started worker whose model is
    ``llm`` (``LLM_MODEL_NAME`` ``m`` unless ``extra`` names another), killed after."""
    values = {"LLM_PROVIDER": "openai", "LLM_BASE_URL": llm.base_url,
              "LLM_API_KEY": DEFAULT_API_KEY, "LLM_MODEL_NAME": "m"} | extra
    redis_url = None
    if request.param == "arq+postgres":
        redis_url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(redis_url).flushdb()
        values |= {"DATABASE_BACKEND": "postgres",
                   "DATABASE_URL": request.getfixturevalue("postgres_database")}
    made = World(tmp_path, "arq" if redis_url else "sqlite", redis_url, twilio, **values)
    made.start_worker()
    try:
        yield made
    finally:
        made.kill_all()
        if redis_url:
            redis.Redis.from_url(redis_url).flushdb()
