"""Monthly reply quotas, counted atomically across API replicas and workers.

The count is one row per owner and month, changed only by a versioned (compare-and-set)
write; a writer that lost the race reads again and retries. So N concurrent takers
against a quota of Q let exactly min(N, Q) through on every backend, and exactly one
of the refused ones is told it is the first (the one that sends the notice).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import replace

from application.errors import ConcurrencyError
from application.identity.directory import StoredOwnerDirectory
from application.identity.store import UowFactory
from application.ports.clock import Clock
from application.ports.reply_allowance import ALLOWED, Allowance
from domain.identity.owner import OverQuota, Usage, usage_id


class Taken(enum.Enum):
    ALLOWED = "allowed"
    REFUSED_FIRST = "refused_first"  # the period's first refusal
    REFUSED = "refused"


class QuotaCounter:
    def __init__(self, uow: UowFactory, clock: Clock, attempts: int = 500) -> None:
        self._uow = uow
        self._clock = clock
        self._attempts = attempts

    def period(self) -> str:
        return self._clock.now().strftime("%Y%m")

    async def take(self, owner_id: str, quota: int) -> Taken:
        period = self.period()
        key = usage_id(owner_id, period)
        for _ in range(self._attempts):
            try:
                return await self._try(key, owner_id, period, quota)
            except ConcurrencyError:
                await asyncio.sleep(0)  # another writer won this round: read again
        raise ConcurrencyError(f"the quota of {owner_id} stayed contended")

    async def used(self, owner_id: str) -> int:
        async with self._uow() as uow:
            row = await uow.repository_for(Usage).get_by_id(usage_id(owner_id, self.period()))
        return row.replies if row else 0

    async def _try(self, key: str, owner_id: str, period: str, quota: int) -> Taken:
        async with self._uow() as uow:
            repo = uow.repository_for(Usage)
            row = await repo.get_by_id(key)
            if row is None:
                allowed = quota > 0
                # Two first writers meet on the primary key: the loser retries.
                await repo.create(Usage(id=key, owner_id=owner_id, period=period,
                                        replies=int(allowed), notices=int(not allowed)))
                taken = Taken.ALLOWED if allowed else Taken.REFUSED_FIRST
            elif row.replies < quota:
                await repo.update(replace(row, replies=row.replies + 1))
                taken = Taken.ALLOWED
            elif row.notices == 0:
                await repo.update(replace(row, notices=1))
                taken = Taken.REFUSED_FIRST
            else:
                return Taken.REFUSED
            await uow.commit()
            return taken


class PlanAllowance:
    """``ReplyAllowance`` from each owner's plan (no plan or no quota: unlimited)."""

    def __init__(self, directory: StoredOwnerDirectory, counter: QuotaCounter,
                 on_refused: Callable[[str, bool], None] | None = None) -> None:
        """``on_refused(owner_id, notice)``: told of each refusal (a metric)."""
        self._directory = directory
        self._counter = counter
        self._on_refused = on_refused

    async def take(self, owner_id: str) -> Allowance:
        plan = (await self._directory.snapshot()).plan_of(owner_id)
        if plan is None or plan.monthly_quota is None:
            return ALLOWED
        taken = await self._counter.take(owner_id, plan.monthly_quota)
        if taken is Taken.ALLOWED:
            return ALLOWED
        notice = (plan.notice if plan.over_quota is OverQuota.NOTICE
                  and taken is Taken.REFUSED_FIRST else None)
        if self._on_refused is not None:
            self._on_refused(owner_id, notice is not None)
        return Allowance(reply=False, notice=notice)
