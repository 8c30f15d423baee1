"""Plans and quotas through the reply path: over quota the inbound message is still
stored, and the reply follows the plan (its notice once, or silence); concurrent
messages never get more replies out than the quota."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from application.identity.quota import QuotaCounter
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from domain.identity.owner import OverQuota, Plan
from domain.message import DeliveryStatus, Direction
from tests.conftest import MakeSettings
from tests.fakes.fake_twilio import FakeTwilioServer
from tests.modules.identity.world import A, B, World, two_owners

NOTICE = "You reached this month's limit."


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


async def replies(world: World) -> list[str]:
    async with world.container[UnitOfWork] as uow:
        messages = await uow.repository(MessageRepository).find_by(
            direction=Direction.OUTBOUND.value)
    return [m.status.value for m in messages]


@pytest.mark.parametrize("over", [OverQuota.NOTICE, OverQuota.SILENCE])
async def test_concurrent_messages_never_get_more_replies_than_the_quota(
    make_settings: MakeSettings, twilio: FakeTwilioServer, over: OverQuota
) -> None:
    async with two_owners(make_settings, twilio) as world:
        await world.store.put_plan(Plan(id="small", name="Small", monthly_quota=3,
                                        over_quota=over, notice=NOTICE))
        await world.store.update(B.owner_id, plan_id="small")
        contacts = [f"whatsapp:+55119{n:08d}" for n in range(10)]
        responses = await asyncio.gather(*(
            world.as_tenant(B, body=f"hi {n}", contact=c) for n, c in enumerate(contacts)))
        assert [r.status_code for r in responses] == [200] * 10
        # Every inbound message is stored, over quota or not.
        assert await world.stored_messages() == 10
        # Two workers' worth of concurrency: both drain the same queue at once.
        await asyncio.gather(world.run_jobs(), world.run_jobs())
        bodies = [s.body or "" for s in twilio.sent]
        echoed = [b for b in bodies if b.startswith("Echo: ")]
        assert len(echoed) == 3
        assert bodies.count(NOTICE) == (1 if over is OverQuota.NOTICE else 0)
        assert len(bodies) == len(echoed) + bodies.count(NOTICE)
        assert await world.container[QuotaCounter].used(B.owner_id) == 3
        # Each inbound has its stored stand-in: the sweep has nothing to queue again.
        statuses = await replies(world)
        assert len(statuses) == 10
        withheld = 10 - 3 - (1 if over is OverQuota.NOTICE else 0)
        assert statuses.count(DeliveryStatus.CANCELED.value) == withheld
        # The other owner has no plan: unlimited.
        await world.as_tenant(A, body="a is free")
        await world.run_jobs()
        assert "Echo: a is free" in [s.body for s in twilio.sent]
