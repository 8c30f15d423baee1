"""arq end to end: a Redis flush loses no reply (the sweep), and arq's own CLI runs the
project's worker (``arq bootstrap.worker.WorkerSettings``), alias and all."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from application.ports.job_queue import DeadLetterStore
from application.use_cases.receive_inbound import InboundMessage, ReceiveInboundMessage
from bootstrap.cli import migrate
from bootstrap.container import Resources, build_container
from bootstrap.settings import Settings
from bootstrap.worker import build_runner
from tests.fakes.fake_twilio import FakeTwilioServer

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
OUR_NUMBER = "whatsapp:+14155238886"
CONTACT = "whatsapp:+5511977776666"


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


@pytest.fixture
async def flushed(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


def env_values(tmp_path: Path, redis_url: str, twilio: FakeTwilioServer) -> dict[str, str]:
    return {
        "API_ENVIRONMENT": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "QUEUE_BACKEND": "bullmq",
        "QUEUE_REDIS_URL": redis_url,
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_API_BASE_URL": twilio.base_url,
        "TWILIO_PHONE_NUMBER": OUR_NUMBER,
        "WORKER_SWEEP_INTERVAL_SECONDS": "1",
        "WORKER_SWEEP_AFTER_SECONDS": "0",
    }


def settings_of(values: dict[str, str]) -> Settings:
    return Settings(_env_file=None, **{k.lower(): v for k, v in values.items()})  # type: ignore[arg-type]


async def intake(container: Any, settings: Settings, sid: str, text: str) -> None:
    await container[ReceiveInboundMessage].execute(InboundMessage(
        message_sid=sid, owner_id=settings.owner_account_sid, from_address=CONTACT,
        to_address=OUR_NUMBER, body=text))


async def test_a_redis_flush_between_intake_and_processing_loses_no_reply(
    tmp_path: Path, flushed: aioredis.Redis, redis_url: str, twilio: FakeTwilioServer
) -> None:
    settings = settings_of(env_values(tmp_path, redis_url, twilio))
    await asyncio.to_thread(migrate, settings)
    container = build_container(settings)
    try:
        await intake(container, settings, "SM" + "f" * 32, "still there?")
        assert await container[DeadLetterStore].depth() == 1
        await flushed.flushdb()  # the job, and its dedup key, are gone
        # `wta worker`'s runner: arq's Worker, whose cron sweep runs at start, then each second.
        runner = build_runner(container, settings)
        running = asyncio.create_task(runner.run())
        try:
            [sent] = await twilio.wait_for_sends_async(1, timeout=15)
            assert sent.body == "Echo: still there?" and sent.to == CONTACT
            # Two more sweeps and any redelivery: never a second WhatsApp message.
            await asyncio.sleep(2.5)
        finally:
            runner.stop()
            await asyncio.wait_for(running, 30)
        assert len(twilio.sent) == 1
    finally:
        await container[Resources].aclose()


async def test_arq_cli_runs_the_projects_worker_and_logs_the_alias(
    tmp_path: Path, flushed: aioredis.Redis, redis_url: str, twilio: FakeTwilioServer
) -> None:
    values = env_values(tmp_path, redis_url, twilio) | {"WORKER_SWEEP_INTERVAL_SECONDS": "0"}
    settings = settings_of(values)
    await asyncio.to_thread(migrate, settings)
    container = build_container(settings)
    try:
        await intake(container, settings, "SM" + "c" * 32, "via arq's CLI")
    finally:
        await container[Resources].aclose()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("API_", "DATABASE_", "QUEUE_", "TWILIO_", "WORKER_"))}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "arq", "bootstrap.worker.WorkerSettings", "--burst"],
        env={**env, **values, "PYTHONPATH": str(ROOT)}, cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "QUEUE_BACKEND=bullmq is an alias: using arq" in output
    assert [s.body for s in twilio.sent] == ["Echo: via arq's CLI"], output
