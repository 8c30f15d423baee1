"""The worker: concurrency, timeouts, retry backoff and the sweep."""

from __future__ import annotations

from pydantic import Field

from bootstrap.settings._common import ConcernSettings


class WorkerTuning(ConcernSettings):
    # Jobs mostly wait (database, Twilio, the model): more slots than cores is the point.
    worker_concurrency: int = Field(200, ge=1)
    worker_job_timeout_seconds: float = Field(120.0, gt=0)
    worker_shutdown_grace_seconds: float = Field(20.0, ge=0)
    worker_backoff_base_seconds: float = Field(1.0, ge=0)
    worker_backoff_max_seconds: float = Field(300.0, ge=0)
    # The sweep re-queues replies of messages stored this long ago with none yet (0: off).
    worker_sweep_interval_seconds: float = Field(60.0, ge=0)
    worker_sweep_after_seconds: float = Field(300.0, ge=0)
