"""The generic repository contract, run for every declared entity on every backend.

The same tests run for Conversation, Message, the identity module's owners, numbers,
plans and usage, and the example module's Invoice: whatever
an entity is, its ``Repository`` keeps the port's semantics and a broken unique key
raises the error its ``EntitySpec`` declares. Subclass ``EntityContract`` in a ``Test*``
class and supply ``uow_factory`` over a registry holding ``ALL_ENTITIES`` (the table of
invoices created from its spec: see ``create_module_tables``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from adapters.sqlalchemy.schema import table_for
from application.entities import EntityRegistry, EntitySpec
from application.errors import ConcurrencyError, InvalidQuery
from application.identity.quota import QuotaCounter, Taken
from application.ports.conversation_repository import ConversationRepository
from application.ports.repository import Condition, Repository
from application.ports.unit_of_work import UnitOfWork
from bootstrap.modules.identity import MODULE as IDENTITY
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.persistence import entity_registry
from domain.conversation import Conversation
from domain.errors import DuplicateMessage
from domain.identity.owner import DuplicateOwner, NumberTaken, Owner, OwnerNumber, Plan, Usage
from domain.message import Message
from tests.contracts.repositories import T0, UowFactory, conversation, message, ulid
from tests.modules.billing.domain import DuplicateInvoice, Invoice, InvoiceStatus
from tests.modules.billing.module import MODULE as BILLING

ALL_ENTITIES: tuple[EntitySpec[Any], ...] = (*WHATSAPP.entities, *IDENTITY.entities,
                                             *BILLING.entities)
_numbers = itertools.count(1)


def registry_for(backend: str, generic: Any) -> EntityRegistry[Any]:
    """The registry bootstrap builds for the kernel's and the example module's entities."""
    return entity_registry(ALL_ENTITIES, backend, generic)


def create_module_tables(url: str, *, allow_supabase: bool = False) -> None:
    """The example module's tables, built from their specs (no kernel migration has them);
    ``allow_supabase``: also add them to ``wta_unit_tables()`` for Supabase commits."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for spec in BILLING.entities:
                table_for(spec).create(connection, checkfirst=True)
            if allow_supabase:
                tables = ", ".join(f"'{spec.table}'" for spec in ALL_ENTITIES)
                connection.execute(text(
                    "CREATE OR REPLACE FUNCTION wta_unit_tables() RETURNS text[] "
                    f"LANGUAGE sql IMMUTABLE AS $fn$ SELECT ARRAY[{tables}]::text[] $fn$"))
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Case:
    """One entity as the contract sees it."""

    entity: type[Any]
    # A fresh entity (its parent rows stored in ``uow`` when it needs some).
    new: Callable[[UnitOfWork], Awaitable[Any]]
    # A valid edit of a stored entity.
    edit: Callable[[Any], Any]
    # A new entity that breaks ``of``'s declared unique key.
    clash: Callable[[Any], Any]
    error: type[Exception]
    # A column whose value is this entity's own, to filter on.
    column: str


async def _conversation(uow: UnitOfWork) -> Conversation:
    return conversation(contact=f"whatsapp:+55119{next(_numbers):08d}")


async def _message(uow: UnitOfWork) -> Message:
    parent = await _conversation(uow)
    await uow.repository(ConversationRepository).create(parent)
    return message(parent.id)


async def _invoice(uow: UnitOfWork) -> Invoice:
    return Invoice(id=ulid(), owner_id="AC1", number=f"INV-{next(_numbers)}",
                   amount_cents=1250, status=InvoiceStatus.OPEN, created_at=T0)


async def _owner(uow: UnitOfWork) -> Owner:
    n = next(_numbers)
    return Owner(id=ulid(), name=f"Owner {n}", account_sid=f"AC{n:032x}",
                 sealed_token="gAAAA-sealed", enabled=True, created_at=T0)


async def _number(uow: UnitOfWork) -> OwnerNumber:
    return OwnerNumber(id=ulid(), owner_id="AC1", number=f"+1415{next(_numbers):07d}")


async def _plan(uow: UnitOfWork) -> Plan:
    return Plan(id=ulid(), name=f"Plan {next(_numbers)}", monthly_quota=100)


async def _usage(uow: UnitOfWork) -> Usage:
    return Usage(id=ulid(), owner_id=f"owner{next(_numbers)}", period="202605", replies=3)


class _FixedClock:
    def now(self) -> datetime:
        return T0


CASES = {
    "owner": Case(
        Owner, _owner,
        edit=lambda o: replace(o, name=o.name + " ✓", enabled=False, system_prompt="hi"),
        clash=lambda o: replace(o, name="another"),
        error=DuplicateOwner, column="name",
    ),
    "owner_number": Case(
        OwnerNumber, _number,
        edit=lambda n: replace(n, owner_id="AC2"),
        clash=lambda n: replace(n, id=ulid()),
        error=NumberTaken, column="number",
    ),
    "plan": Case(
        Plan, _plan,
        edit=lambda p: replace(p, monthly_quota=None, notice="over"),
        clash=lambda p: replace(p, name="another"),
        error=ConcurrencyError, column="name",
    ),
    "usage": Case(
        Usage, _usage,
        edit=lambda u: replace(u, replies=u.replies + 1),
        clash=lambda u: replace(u, replies=0),
        error=ConcurrencyError, column="owner_id",
    ),
    "conversation": Case(
        Conversation, _conversation,
        edit=lambda c: c.touched(T0 + timedelta(minutes=3)),
        clash=lambda c: replace(c, id=ulid()),
        error=ConcurrencyError, column="contact",
    ),
    "message": Case(
        Message, _message,
        edit=lambda m: replace(m, body="edited ✓", metadata={"k": [1, "two"]}),
        clash=lambda m: replace(m, id=ulid()),
        error=DuplicateMessage, column="provider_sid",
    ),
    "invoice": Case(
        Invoice, _invoice,
        edit=lambda i: i.paid(datetime(2024, 5, 2, 9, 30, tzinfo=UTC)),
        clash=lambda i: replace(i, id=ulid(), amount_cents=99),
        error=DuplicateInvoice, column="number",
    ),
}


class EntityContract:
    @pytest.fixture(params=sorted(CASES))
    def case(self, request: pytest.FixtureRequest) -> Case:
        return CASES[request.param]

    async def stored(self, uow_factory: UowFactory, case: Case, n: int = 1) -> list[Any]:
        async with uow_factory() as uow:
            items = [await case.new(uow) for _ in range(n)]
            repo: Repository[Any] = uow.repository_for(case.entity)
            for item in items:
                await repo.create(item)
            await uow.commit()
        return items

    async def test_create_then_get(self, uow_factory: UowFactory, case: Case) -> None:
        [item] = await self.stored(uow_factory, case)
        async with uow_factory() as uow:
            repo = uow.repository_for(case.entity)
            assert await repo.get_by_id(item.id) == item
            assert await repo.get_by_id(ulid()) is None

    async def test_update_bumps_the_version_and_a_stale_one_changes_nothing(
        self, uow_factory: UowFactory, case: Case
    ) -> None:
        [item] = await self.stored(uow_factory, case)
        async with uow_factory() as uow:
            updated = await uow.repository_for(case.entity).update(case.edit(item))
            await uow.commit()
        assert updated.version == item.version + 1
        async with uow_factory() as uow:
            repo = uow.repository_for(case.entity)
            assert await repo.get_by_id(item.id) == updated
            with pytest.raises(ConcurrencyError):
                await repo.update(case.edit(item))  # still at the old version
            assert await repo.get_by_id(item.id) == updated

    async def test_delete(self, uow_factory: UowFactory, case: Case) -> None:
        first, second = await self.stored(uow_factory, case, 2)
        async with uow_factory() as uow:
            repo = uow.repository_for(case.entity)
            assert await repo.delete(first.id) is True
            assert await repo.delete(first.id) is False
            await uow.commit()
        async with uow_factory() as uow:
            repo = uow.repository_for(case.entity)
            assert await repo.get_by_id(first.id) is None
            assert await repo.get_by_id(second.id) == second

    async def test_filters_pages_and_queries(self, uow_factory: UowFactory, case: Case) -> None:
        items = await self.stored(uow_factory, case, 3)
        mine = getattr(items[1], case.column)
        async with uow_factory() as uow:
            repo = uow.repository_for(case.entity)
            assert await repo.find_by(**{case.column: mine}) == [items[1]]
            assert await repo.count({case.column: mine}) == 1
            ids = {i.id for i in items}
            seen: list[str] = []
            cursor: str | None = None
            while True:
                page = await repo.list(limit=2, cursor=cursor)
                seen += [e.id for e in page.items if e.id in ids]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert seen == sorted(ids)
            found = await repo.query([Condition(case.column, "in", [mine]),
                                      Condition("id", "gte", items[0].id)])
            assert [e.id for e in found.items] == [items[1].id]
            with pytest.raises(InvalidQuery):
                await repo.find_by(**{"no_such_column; --": 1})

    async def test_a_broken_unique_key_raises_the_declared_error(
        self, uow_factory: UowFactory, case: Case
    ) -> None:
        [item] = await self.stored(uow_factory, case)
        async with uow_factory() as uow:
            repo = uow.repository_for(case.entity)
            with pytest.raises(case.error):
                await repo.create(case.clash(item))
            # The refused write left the unit usable.
            assert await repo.get_by_id(item.id) == item
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.repository_for(case.entity).count(
                {case.column: getattr(item, case.column)}) == 1

    async def test_a_taken_id_is_refused(self, uow_factory: UowFactory, case: Case) -> None:
        [item] = await self.stored(uow_factory, case)
        async with uow_factory() as uow:
            fresh = await case.new(uow)
            with pytest.raises((case.error, ConcurrencyError)):
                await uow.repository_for(case.entity).create(replace(fresh, id=item.id))

    async def test_leaving_without_commit_stores_nothing(
        self, uow_factory: UowFactory, case: Case
    ) -> None:
        async with uow_factory() as uow:
            item = await case.new(uow)
            await uow.repository_for(case.entity).create(item)
        async with uow_factory() as uow:
            assert await uow.repository_for(case.entity).get_by_id(item.id) is None

    async def test_unregistered_ports_and_entities_are_named(
        self, uow_factory: UowFactory
    ) -> None:
        class Unregistered:
            pass

        async with uow_factory() as uow:
            with pytest.raises(LookupError, match="Unregistered"):
                uow.repository(Unregistered)
            with pytest.raises(LookupError, match="Unregistered"):
                uow.repository_for(Unregistered)

    async def test_concurrent_quota_takes_never_pass_more_than_the_quota(
        self, uow_factory: UowFactory
    ) -> None:
        # The identity module's quota: a versioned write per take, retried when it lost.
        counter = QuotaCounter(uow_factory, _FixedClock())
        owner = f"quota{next(_numbers)}"
        taken = await asyncio.gather(*(counter.take(owner, 4) for _ in range(12)))
        assert taken.count(Taken.ALLOWED) == 4
        assert taken.count(Taken.REFUSED_FIRST) == 1
        assert taken.count(Taken.REFUSED) == 7
        assert await counter.used(owner) == 4
        assert await counter.take(owner, 5) is Taken.ALLOWED  # a bigger plan: room again
        assert await counter.take(f"quota{next(_numbers)}", 0) is Taken.REFUSED_FIRST
