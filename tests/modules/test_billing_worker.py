"""The example module's tasks under the real worker of every queue backend (memory, SQLite,
SQS on moto, arq on Redis), composed through ``build_container(..., modules=[...])``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from bootstrap.settings import Settings
from tests.conftest import MakeSettings
from tests.contracts.worker import ModuleWorkerContract
from tests.fakes.moto_sqs import MotoSqs, moto_sqs  # noqa: F401 - moto_sqs is a fixture

# Memory for the database: these tests are about the queue; the sweep stays off.
COMMON: dict[str, Any] = {"database_backend": "memory", "worker_sweep_interval_seconds": 0,
                          "queue_max_attempts": 3, "worker_backoff_base_seconds": 0.1,
                          "worker_backoff_max_seconds": 0.2, "worker_job_timeout_seconds": 5,
                          "queue_poll_interval_seconds": 0.1}


class TestMemoryWorker(ModuleWorkerContract):
    @pytest.fixture
    def queue_settings(self, make_settings: MakeSettings) -> Settings:
        return make_settings(queue_backend="memory", **COMMON)


class TestSqliteWorker(ModuleWorkerContract):
    @pytest.fixture
    def queue_settings(self, make_settings: MakeSettings) -> Settings:
        return make_settings(queue_backend="sqlite", **COMMON)


@pytest.mark.integration
class TestSqsWorker(ModuleWorkerContract):
    @pytest.fixture
    def queue_settings(self, make_settings: MakeSettings, moto_sqs: MotoSqs) -> Settings:  # noqa: F811
        url, dead = moto_sqs.create_queues(fifo=True)
        return make_settings(
            queue_backend="sqs", queue_sqs_queue_url=url, queue_sqs_dlq_url=dead,
            queue_sqs_endpoint_url=moto_sqs.endpoint_url, queue_aws_access_key_id="testing",
            queue_aws_secret_access_key="testing", **COMMON)


@pytest.mark.integration
class TestArqWorker(ModuleWorkerContract):
    @pytest.fixture
    async def queue_settings(
        self, make_settings: MakeSettings, redis_url: str
    ) -> AsyncIterator[Settings]:
        client = aioredis.Redis.from_url(redis_url)
        await client.flushdb()
        yield make_settings(queue_backend="arq", queue_redis_url=redis_url, **COMMON)
        await client.flushdb()
        await client.aclose()
