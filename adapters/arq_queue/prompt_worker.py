"""arq's Worker, taking jobs as soon as there is one and a free slot, not on a fixed poll.

arq's own loop reads the queue, starts at most ``max_jobs`` jobs, then sleeps ``poll_delay``
(0.5 s by default) whatever happens meanwhile: with jobs that take 10 ms, four slots give
about 8 jobs a second. Here the loop waits on an event instead, set when

- a job ends (a slot is free: read the queue again at once), or
- a producer announces a job: ``ArqJobQueue.enqueue`` publishes on ``wake_channel`` and
  the worker listens on its own Redis connection;

and polls only every ``idle_poll`` seconds as a fallback (a delayed job coming due, a lost
announcement, a producer that does not announce). Which job runs is still arq's; the
waiting between reads changes, and a job is claimed in one round trip (``claim.py``). A
job arq itself fails before it runs (its data gone in a flush) keeps no result, so the
sweep can queue its work again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq.worker import Worker
from redis.exceptions import RedisError

from adapters.arq_queue.claim import OneTripClaim

log = logging.getLogger(__name__)

_LISTEN_RETRY_SECONDS = 1.0
_HAND_BACK_SECONDS = 5.0


class PromptWorker(Worker):
    def __init__(self, *args: Any, wake_channel: str, idle_poll: float, **kwargs: Any) -> None:
        # arq's loop must not sleep on its own: _poll_iteration does the waiting.
        kwargs["poll_delay"] = 0
        super().__init__(*args, **kwargs)
        self._wake = asyncio.Event()
        self._wake_channel = wake_channel
        self._idle_poll = idle_poll
        self._listener: asyncio.Task[None] | None = None
        self._claim: OneTripClaim | None = None

    async def _poll_iteration(self) -> None:
        # Cleared before reading: a wake-up that comes while we read is kept for the wait.
        self._wake.clear()
        await super()._poll_iteration()
        if self.burst:
            return  # burst mode checks for an empty queue after every iteration
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="arq-wake-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._idle_poll)

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's ``start_jobs`` with its claim in one round trip (``OneTripClaim``).

        A job stays in the queue while it runs, so a read returns the jobs running here
        too: those are skipped without asking Redis or waiting for a slot. Jobs running on
        other workers are still asked about, and refused by the claim.
        """
        if self._claim is None:
            self._claim = OneTripClaim(self.pool, self.queue_name, self.in_progress_timeout_s)
        tasks = self.tasks
        for raw_id in job_ids:
            job_id = raw_id.decode()
            if (running := tasks.get(job_id)) is not None and not running.done():
                continue
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs:
                self.sem.release()
                return
            self.job_counter += 1
            try:
                score = await self._claim(job_id)
            except BaseException:
                self._give_back_slot()
                raise
            if score is None:
                self._give_back_slot()
                continue
            task = self.loop.create_task(self.run_job(job_id, score))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            tasks[job_id] = task

    def _give_back_slot(self) -> None:
        # Not through the completion hook below: a job refused here frees no slot anyone
        # waits for, and waking would read the same refused ids again at once.
        self.job_counter -= 1
        self.sem.release()

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self._wake.set()

    async def _listen(self) -> None:
        """Set the wake event on every announcement; reconnect after an error."""
        while True:
            pubsub = self.pool.pubsub()
            try:
                await pubsub.subscribe(self._wake_channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=None)
                    if message is not None:
                        self._wake.set()
            except (RedisError, OSError) as exc:
                log.warning("wake-up listener lost Redis (%s); polling meanwhile", exc)
                self._wake.set()  # whatever was announced meanwhile: look now
                await asyncio.sleep(_LISTEN_RETRY_SECONDS)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        # arq fails a job here before running it (its data expired or was flushed, it cannot
        # be read, it ran past arq's tries). Kept, that failed result would hold the job's
        # dedup key for an hour and block the sweep from queueing the lost work again.
        await super().finish_failed_job(job_id, None)

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        # A job cancelled on shutdown hands itself back in a last Redis write. arq's close()
        # cancels it again and closes the pool, which can cut that write off and leave the
        # job locked until its in-progress key expires: let those writes finish first.
        running = [t for t in self.tasks.values() if not t.done()]
        if running:
            await asyncio.wait(running, timeout=_HAND_BACK_SECONDS)
        await super().close()
