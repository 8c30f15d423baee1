"""Plans and quotas through the reply path: over quota the inbound message is still
stored, and the reply follows the plan (its notice once, or silence); concurrent
messages never get more replies out than the quota."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from application.identity.quota import QuotaCounter
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from bootstrap.telemetry import build_telemetry
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


async def test_each_refusal_is_counted_by_owner_and_whether_the_notice_went(
    make_settings: MakeSettings, twilio: FakeTwilioServer
) -> None:
    reader = InMemoryMetricReader()
    telemetry = build_telemetry(make_settings(), metric_readers=[reader])
    try:
        async with two_owners(make_settings, twilio, telemetry=telemetry) as world:
            await world.store.put_plan(Plan(id="one", name="One", monthly_quota=1,
                                            over_quota=OverQuota.NOTICE, notice=NOTICE))
            await world.store.update(B.owner_id, plan_id="one")
            for n in range(4):  # one reply, then the notice, then silence twice
                assert (await world.as_tenant(B, body=f"hi {n}")).status_code == 200
                await world.run_jobs()
            assert (await world.as_tenant(A, body="a is not limited")).status_code == 200
            await world.run_jobs()
        data = reader.get_metrics_data()
        points: list[Any] = [p for r in (data.resource_metrics if data else [])
                  for s in r.scope_metrics for m in s.metrics
                  if m.name == "wta.quota.refused" for p in m.data.data_points]
        counted = {(p.attributes["owner_id"], p.attributes["notice"]): p.value for p in points}
        assert counted == {(B.owner_id, True): 1, (B.owner_id, False): 2}
    finally:
        telemetry.shutdown()
