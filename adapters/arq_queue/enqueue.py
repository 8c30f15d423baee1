"""arq's ``enqueue_job`` in one round trip, announcement included.

arq checks for an existing job under WATCH, then writes it in MULTI/EXEC: four round trips
to Redis per job, each a turn of a busy event loop for the webhook waiting on it. This
script does the same check and the same writes atomically on the server, storing exactly
what ``enqueue_job`` stores (arq's own job serialisation, key names and expiry), so arq's
Worker consumes it unchanged. A job due now is announced on the workers' wake channel by
the same script, not by a second round trip.
"""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

# KEYS: job key, result key, queue. ARGV: job id, expiry ms, score, serialised job, and
# the channel to announce the job on ('' for none).
_SCRIPT = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('PSETEX', KEYS[1], ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], '') end
return 1
"""


class OneTripEnqueue:
    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis
        self._script = redis.register_script(_SCRIPT)

    async def __call__(self, queue: str, job_id: str, function: str, delay_seconds: float,
                       kwargs: dict[str, Any], *, announce_on: str = "") -> bool:
        """True when queued; False when a job with this id is waiting, running or kept.

        ``announce_on``: a channel to publish on once queued (not for a delayed job: no
        worker can take it yet)."""
        redis = self._redis
        enqueued_ms = timestamp_ms()
        score = enqueued_ms + round(delay_seconds * 1000)
        expires_ms = score - enqueued_ms + redis.expires_extra_ms
        job = serialize_job(function, (), kwargs, None, enqueued_ms,
                            serializer=redis.job_serializer)
        added = await self._script(
            keys=[job_key_prefix + job_id, result_key_prefix + job_id, queue],
            args=[job_id, expires_ms, score, job, announce_on if delay_seconds <= 0 else ""],
        )
        return bool(added)
