"""A module's entity persists through the composed container, no kernel file changed:
the example module's invoices next to the WhatsApp flow's conversations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from bootstrap.container import Resources, build_container
from bootstrap.migrator import alembic_url
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.persistence import with_repositories
from domain.ids import new_ulid
from tests.adapters.alembic_helpers import migrate
from tests.conftest import MakeSettings
from tests.contracts.entities import create_module_tables
from tests.modules.billing.domain import DuplicateInvoice, Invoice, InvoiceStatus
from tests.modules.billing.module import MODULE as BILLING
from tests.modules.billing.persistence import INVOICES

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def invoice(number: str) -> Invoice:
    return Invoice(id=new_ulid(), owner_id="AC1", number=number, amount_cents=500,
                   status=InvoiceStatus.OPEN, created_at=T0)


@pytest.mark.parametrize("backend", ["memory", "sqlalchemy"])
async def test_the_container_serves_a_module_entity(
    backend: str, make_settings: MakeSettings
) -> None:
    settings = make_settings(database_backend=backend)
    if backend == "sqlalchemy":
        url = alembic_url(settings)
        assert url is not None
        migrate(url)
        create_module_tables(url)  # the module's table: no kernel migration has it
    container = build_container(settings, modules=[WHATSAPP, BILLING])
    try:
        first = invoice("INV-1")
        async with container[UnitOfWork] as uow:
            invoices = uow.repository_for(Invoice)
            await invoices.create(first)
            with pytest.raises(DuplicateInvoice):
                await invoices.create(invoice("INV-1"))
            await uow.commit()
        async with container[UnitOfWork] as uow:
            assert await uow.repository_for(Invoice).find_by(number="INV-1") == [first]
            # The kernel's own entities are served by the same unit.
            assert await uow.repository(MessageRepository).count() == 0
    finally:
        await container[Resources].aclose()


def test_an_extension_for_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="invoices: unknown persistence backends \\['mongo'\\]"):
        with_repositories(INVOICES, mongo="x:Y")
