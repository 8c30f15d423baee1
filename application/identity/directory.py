"""The stored owner directory, answered from an in-memory snapshot.

Staleness bound: every process re-reads the directory revision (one primary-key read)
at most once per ``refresh_seconds`` and reloads the snapshot when it moved, so a change
made by any process (CLI, admin API, another replica) is seen everywhere within
``refresh_seconds`` plus one reload. A lookup between checks costs no query.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from application.errors import StorageUnavailable
from application.identity.cipher import TokenCipher
from application.identity.snapshot import Snapshot, build_snapshot
from application.identity.store import UowFactory, every, read_revision
from application.ports.owner_directory import ChannelOwner
from domain.identity.owner import Owner, OwnerNumber, Plan

log = logging.getLogger(__name__)


class StoredOwnerDirectory:
    def __init__(
        self,
        uow: UowFactory,
        cipher: TokenCipher,
        *,
        refresh_seconds: float = 1.0,
        provision: Callable[[], Awaitable[object]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``provision``: run once before the first load (the default owner)."""
        self._uow = uow
        self._cipher = cipher
        self._refresh = refresh_seconds
        self._provision = provision
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0
        self._lock = asyncio.Lock()
        self.loads = 0  # snapshots built: tests see a change reload exactly once

    async def resolve(self, account_sid: str | None, to: str | None) -> ChannelOwner | None:
        return (await self.snapshot()).resolve(account_sid, to)

    async def by_id(self, owner_id: str) -> ChannelOwner | None:
        return (await self.snapshot()).channel.get(owner_id)

    def invalidate(self) -> None:
        """This process changed something: check the revision on the next lookup."""
        self._checked_at = float("-inf")

    async def snapshot(self) -> Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and self._clock() - self._checked_at < self._refresh:
            return snapshot
        async with self._lock:
            if self._snapshot is not None and self._clock() - self._checked_at < self._refresh:
                return self._snapshot
            try:
                await self._refresh_now()
            except StorageUnavailable:
                if self._snapshot is None:
                    raise
                # Webhooks keep being answered from what was read last; checked again
                # after another interval.
                log.warning("owner directory not refreshed: the database is unavailable")
            self._checked_at = self._clock()
            assert self._snapshot is not None  # loaded above, or the error was raised
            return self._snapshot

    async def _refresh_now(self) -> None:
        if self._provision is not None:
            await self._provision()
            self._provision = None  # only once it succeeded
        async with self._uow() as uow:
            revision = await read_revision(uow)
            if self._snapshot is None or revision != self._snapshot.revision:
                # Read in one unit: the owners, numbers and plans of one revision.
                self._snapshot = build_snapshot(
                    revision,
                    await every(uow.repository_for(Owner)),
                    await every(uow.repository_for(OwnerNumber)),
                    await every(uow.repository_for(Plan)),
                    self._cipher,
                )
                self.loads += 1
                log.info("owner directory loaded", extra={
                    "revision": revision, "owners": len(self._snapshot.owners)})
