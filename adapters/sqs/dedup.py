"""The in-process part of the SQS queue's dedup: keys this instance enqueued or ran."""

from __future__ import annotations

import time


class KeyRecord:
    """Dedup keys held until a monotonic deadline; the oldest go first past ``capacity``."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._until: dict[str, float] = {}
        self._capacity = capacity

    def claim(self, key: str, until: float) -> bool:
        """Hold ``key`` until ``until`` unless it is already held; False if it was."""
        held = self._until.get(key)
        if held is not None and held > time.monotonic():
            return False
        self._until.pop(key, None)
        self._until[key] = until
        while len(self._until) > self._capacity:
            del self._until[next(iter(self._until))]
        return True

    def hold(self, key: str, until: float) -> None:
        """Hold ``key`` at least until ``until`` (a job with it is running or just done)."""
        self._until[key] = max(until, self._until.get(key, until))
        while len(self._until) > self._capacity:
            del self._until[next(iter(self._until))]

    def release(self, key: str) -> None:
        self._until.pop(key, None)
