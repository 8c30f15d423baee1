"""ArqJobQueue: JobQueue and DeadLetterStore on Redis through arq.

Jobs are ordinary arq jobs of one arq function (``DISPATCH``); their kwargs carry the task
name, the payload as JSON text (so it round-trips exactly as on every other backend) and
the headers as a dict. A dedup key becomes arq's ``_job_id``: arq refuses a second job while
one with that id is queued or running, and while its result is kept (``keep_result``), which
gives the port's "waiting, running or recently done". Dead letters live in one hash (id to
JSON record) and one sorted set (id by failure time) under the queue's name.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from arq.connections import ArqRedis, RedisSettings
from arq.constants import result_key_prefix
from redis.exceptions import RedisError

from adapters.arq_queue.enqueue import OneTripEnqueue
from application.errors import QueueUnavailable
from application.ports.job_queue import DeadLetter, Job, encode_payload
from domain.ids import new_ulid

DEFAULT_QUEUE_NAME = "wta:queue"
# How long a finished job's result (and so its dedup key) is kept, as SQLite's retention.
DONE_RETENTION_SECONDS = 3600.0
# The one arq function every job is queued under; the task name rides in its kwargs, so
# the worker, not arq, decides what an unknown task means (a dead letter).
DISPATCH = "wta.task"
_DRIVER_ERRORS = (RedisError, OSError)




class ArqJobQueue:
    """JobQueue and DeadLetterStore over arq. ``arq.worker.Worker`` is the consumer."""

    def __init__(
        self,
        redis_url: str,
        *,
        queue_name: str = DEFAULT_QUEUE_NAME,
        max_attempts: int = 5,
        max_payload_bytes: int = 256 * 1024,
        keep_result_seconds: float = DONE_RETENTION_SECONDS,
    ) -> None:
        self.redis_url = redis_url
        self.queue_name = queue_name
        self.max_attempts = max_attempts
        self.max_payload_bytes = max_payload_bytes
        self.keep_result_seconds = keep_result_seconds
        # Announces due jobs to PromptWorkers, so they need not poll for them. Pub/sub
        # channels are server-wide, not per database: the database number is in the name.
        self.wake_channel = f"{queue_name}:wake:{self.redis_settings.database}"
        self._dead_key = f"{queue_name}:dead-letters"
        self._dead_order_key = f"{queue_name}:dead-letters:by-time"
        self._redis: ArqRedis | None = None  # built on first use; building it connects nothing
        self._closed = False
        self._enqueue: OneTripEnqueue | None = None

    @property
    def redis_settings(self) -> RedisSettings:
        # A producer fails fast: arq's default retries five times, a second apart.
        return replace(RedisSettings.from_dsn(self.redis_url), conn_retries=0)

    def _pool(self) -> ArqRedis:
        if self._closed:
            raise QueueUnavailable(f"arq queue {self.queue_name!r} is closed")
        if self._redis is None:
            settings = self.redis_settings
            self._redis = ArqRedis(
                host=settings.host,
                port=settings.port,
                db=settings.database,
                username=settings.username,
                password=settings.password,
                ssl=settings.ssl,
                socket_connect_timeout=settings.conn_timeout,
                default_queue_name=self.queue_name,
            )
        return self._redis

    def _unavailable(self, exc: BaseException) -> QueueUnavailable:
        name = type(exc).__name__
        return QueueUnavailable(f"arq queue {self.queue_name!r} failed: {name}: {exc}")

    # -- JobQueue ---------------------------------------------------------------------

    async def enqueue(
        self,
        task: str,
        payload: Mapping[str, Any],
        *,
        dedup_key: str | None = None,
        delay_seconds: float = 0.0,
        headers: Mapping[str, str] | None = None,
    ) -> str | None:
        text, header_map = encode_payload(task, payload, headers, self.max_payload_bytes)
        job_id = dedup_key or new_ulid()
        try:
            if self._enqueue is None:
                self._enqueue = OneTripEnqueue(self._pool())
            # Announced in the same script: idle workers wake at once. An announcement
            # nobody hears only means a worker finds the job at its next fallback poll.
            added = await self._enqueue(
                self.queue_name, job_id, DISPATCH, max(0.0, delay_seconds),
                {"task": task, "payload": text, "headers": header_map, "dedup_key": dedup_key},
                announce_on=self.wake_channel,
            )
        except _DRIVER_ERRORS as exc:
            raise self._unavailable(exc) from exc
        return job_id if added else None

    # -- dead letters (written by the arq task wrapper, read through the port) ---------

    async def add_dead_letter(self, job: Job, error: str) -> None:
        """Record ``job`` as dead. Keyed by job id, so recording it twice keeps one entry."""
        failed_at = time.time()
        record = {
            "id": job.id,
            "task": job.task,
            "payload": dict(job.payload),
            "headers": dict(job.headers),
            "attempts": job.attempt,
            "last_error": error,
            "failed_at": failed_at,
            "dedup_key": job.dedup_key,
        }
        try:
            async with self._pool().pipeline(transaction=True) as tr:
                tr.hset(self._dead_key, job.id, json.dumps(record, ensure_ascii=False))
                tr.zadd(self._dead_order_key, {job.id: failed_at})
                await tr.execute()
        except _DRIVER_ERRORS as exc:
            raise self._unavailable(exc) from exc

    async def list_dead(self, limit: int = 100) -> list[DeadLetter]:
        if limit < 1:
            return []
        try:
            pool = self._pool()
            ids = await pool.zrange(self._dead_order_key, 0, limit - 1)
            # redis-py types its commands for both clients (an awaitable or a value).
            raws = await cast("Awaitable[list[bytes | None]]",
                              pool.hmget(self._dead_key, ids)) if ids else []
        except _DRIVER_ERRORS as exc:
            raise self._unavailable(exc) from exc
        return [_dead_letter(json.loads(raw)) for raw in raws if raw is not None]

    async def replay(self, dead_letter_id: str) -> bool:
        """Queue the dead job again as a fresh job (attempt 1), under its dedup key if any.

        A job with the same key that is waiting or running already covers the work; the
        failed result arq keeps for the dead job is dropped so it does not block the key.
        """
        try:
            async with self._pool().pipeline(transaction=True) as tr:
                tr.hget(self._dead_key, dead_letter_id)
                tr.hdel(self._dead_key, dead_letter_id)
                tr.zrem(self._dead_order_key, dead_letter_id)
                raw, removed, _ = await tr.execute()
        except _DRIVER_ERRORS as exc:
            raise self._unavailable(exc) from exc
        if not removed or raw is None:
            return False
        record = json.loads(raw)
        try:
            if record["dedup_key"]:
                await self._pool().delete(result_key_prefix + record["dedup_key"])
            await self.enqueue(record["task"], record["payload"],
                               dedup_key=record["dedup_key"], headers=record["headers"])
        except _DRIVER_ERRORS as exc:
            await self._restore(dead_letter_id, raw, record["failed_at"])
            raise self._unavailable(exc) from exc
        except BaseException:
            await self._restore(dead_letter_id, raw, record["failed_at"])
            raise
        return True

    async def _restore(self, dead_letter_id: str, raw: bytes, failed_at: float) -> None:
        """Put a dead letter back when its replay could not be queued (best effort)."""
        try:
            async with self._pool().pipeline(transaction=True) as tr:
                tr.hset(self._dead_key, dead_letter_id, raw.decode())
                tr.zadd(self._dead_order_key, {dead_letter_id: failed_at})
                await tr.execute()
        except (*_DRIVER_ERRORS, QueueUnavailable):
            pass

    async def purge(self) -> int:
        try:
            async with self._pool().pipeline(transaction=True) as tr:
                tr.hlen(self._dead_key)
                tr.delete(self._dead_key, self._dead_order_key)
                count, _ = await tr.execute()
        except _DRIVER_ERRORS as exc:
            raise self._unavailable(exc) from exc
        return int(count)

    # -- operations -------------------------------------------------------------------

    async def ping(self) -> None:
        try:
            await self._pool().ping()
        except _DRIVER_ERRORS as exc:
            raise self._unavailable(exc) from exc

    async def depth(self) -> int:
        """Jobs waiting (delayed and retrying ones included) or running."""
        try:
            return int(await self._pool().zcard(self.queue_name))
        except _DRIVER_ERRORS as exc:
            raise self._unavailable(exc) from exc

    async def dead_count(self) -> int:
        try:
            return int(await cast("Awaitable[int]", self._pool().hlen(self._dead_key)))
        except _DRIVER_ERRORS as exc:
            raise self._unavailable(exc) from exc

    async def close(self) -> None:
        self._closed = True
        self._enqueue = None
        redis, self._redis = self._redis, None
        if redis is not None:
            await redis.aclose(close_connection_pool=True)


def _dead_letter(record: dict[str, Any]) -> DeadLetter:
    return DeadLetter(
        id=record["id"],
        task=record["task"],
        payload=record["payload"],
        attempts=record["attempts"],
        last_error=record["last_error"],
        failed_at=datetime.fromtimestamp(record["failed_at"], UTC),
        dedup_key=record["dedup_key"],
    )
