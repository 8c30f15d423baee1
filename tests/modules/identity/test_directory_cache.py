"""The owner directory answers from memory and sees changes made by another process
within its refresh interval (the clock is the test's: no timing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from application.identity.cipher import TokenCipher
from application.identity.directory import StoredOwnerDirectory
from application.ports.unit_of_work import UnitOfWork
from bootstrap.container import build_container
from bootstrap.modules.identity import MODULE as IDENTITY
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.resources import Resources
from tests.conftest import MakeSettings
from tests.fakes.fake_twilio import FakeTwilioServer
from tests.modules.identity.world import A, B, two_owners


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_change_in_another_process_is_seen_within_the_refresh_interval(
    make_settings: MakeSettings, twilio: FakeTwilioServer
) -> None:
    async with two_owners(make_settings, twilio) as world:
        await world.container[StoredOwnerDirectory].snapshot()  # provisions the default A
        # "Another process": its own container on the same database, its own directory.
        other = build_container(world.settings, modules=[WHATSAPP, IDENTITY])
        clock = Clock()
        units = 0

        def uow() -> UnitOfWork:
            nonlocal units
            units += 1
            unit: UnitOfWork = other[UnitOfWork]
            return unit

        directory = StoredOwnerDirectory(uow, other[TokenCipher], refresh_seconds=1.0,
                                         clock=clock)
        try:
            assert await directory.resolve(B.account_sid, B.address) is not None
            assert (units, directory.loads) == (1, 1)
            for _ in range(50):  # lookups between checks open no unit at all
                assert await directory.resolve(A.account_sid, A.address) is not None
            assert units == 1
            clock.now += 1.0  # the revision is read again; unchanged: no reload
            await directory.resolve(B.account_sid, B.address)
            assert (units, directory.loads) == (2, 1)

            await world.store.disable(B.owner_id)  # "this" process changes B
            clock.now += 0.5  # within the bound the other process may still answer B
            assert await directory.resolve(B.account_sid, B.address) is not None
            clock.now += 0.5
            assert await directory.resolve(B.account_sid, B.address) is None
            assert directory.loads == 2
            # And the changing process's own directory saw it at once.
            assert (await world.as_tenant(B)).status_code == 403
        finally:
            await other[Resources].aclose()


async def test_a_database_outage_keeps_the_last_snapshot_and_retries_provisioning(
    make_settings: MakeSettings,
) -> None:
    from application.errors import StorageUnavailable
    from application.identity.store import OwnerStore

    settings = make_settings(database_backend="memory", queue_backend="memory")
    container = build_container(settings, modules=[WHATSAPP, IDENTITY])
    clock = Clock()
    down = True
    provisioned = 0

    def uow() -> UnitOfWork:
        if down:
            raise StorageUnavailable("database down")
        unit: UnitOfWork = container[UnitOfWork]
        return unit

    async def provision() -> None:
        nonlocal provisioned
        uow()  # raises while down, as a real provisioning would
        provisioned += 1

    directory = StoredOwnerDirectory(uow, container[TokenCipher], refresh_seconds=1.0,
                                     provision=provision, clock=clock)
    try:
        with pytest.raises(StorageUnavailable):  # nothing read yet: nothing to answer with
            await directory.resolve(B.account_sid, B.address)
        down = False
        await container[OwnerStore].add(name="B", account_sid=B.account_sid,
                                        auth_token=B.auth_token, numbers=[B.number],
                                        owner_id=B.owner_id)
        assert await directory.resolve(B.account_sid, B.address) is not None
        assert provisioned == 1  # retried after the failed first attempt, then done
        down = True
        clock.now += 5
        assert await directory.resolve(B.account_sid, B.address) is not None
        assert provisioned == 1
    finally:
        await container[Resources].aclose()
