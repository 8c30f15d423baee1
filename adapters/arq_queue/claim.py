"""arq's claim of a queued job in one round trip.

Before running a job, arq's worker watches the job's in-progress key, asks whether it
exists, reads the job's score, then sets the key in MULTI/EXEC: four of the roughly
eleven round trips a reply cost on postgres + arq. This script makes the same checks and the same
write atomically on the server (the key names and expiry are arq's), so arq's own job
running, retries and results are unchanged and other arq workers claim alongside it.
"""

from __future__ import annotations

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms

# KEYS: the job's in-progress key, the queue. ARGV: job id, now (ms), lock expiry (ms).
# Returns the job's score when claimed; nothing when it runs elsewhere, left the queue,
# or is not due yet (re-queued with a delay meanwhile).
_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('PSETEX', KEYS[1], ARGV[3], '1')
return score
"""


class OneTripClaim:
    def __init__(self, redis: ArqRedis, queue: str, lock_seconds: float) -> None:
        self._script = redis.register_script(_SCRIPT)
        self._queue = queue
        self._lock_ms = int(lock_seconds * 1000)

    async def __call__(self, job_id: str) -> int | None:
        """The job's score once this worker holds it; None when it is not to run here."""
        score = await self._script(
            keys=[in_progress_key_prefix + job_id, self._queue],
            args=[job_id, timestamp_ms(), self._lock_ms],
        )
        return None if score is None else int(float(score))
