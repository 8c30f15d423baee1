"""The example module end to end on the embedded defaults: its task, enqueued through the
container as the seed's usage example does, marks a stored invoice paid in the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from application.ports.job_queue import JobQueue
from application.ports.unit_of_work import UnitOfWork
from bootstrap.container import Resources, build_container
from bootstrap.migrator import alembic_url
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from bootstrap.worker import build_runner
from domain.ids import new_ulid
from tests.adapters.alembic_helpers import migrate
from tests.conftest import MakeSettings
from tests.contracts.entities import create_module_tables
from tests.modules.billing.domain import Invoice, InvoiceStatus
from tests.modules.billing.module import MODULE as BILLING
from tests.modules.billing.tasks import MARK_INVOICE_PAID


async def test_the_module_task_pays_a_stored_invoice(make_settings: MakeSettings) -> None:
    settings = make_settings(database_backend="sqlalchemy", queue_backend="sqlite")
    url = alembic_url(settings)
    assert url is not None
    migrate(url)
    create_module_tables(url)
    container = build_container(settings, modules=[WHATSAPP, BILLING])
    invoice = Invoice(id=new_ulid(), owner_id="AC1", number="2026-7", amount_cents=900,
                      status=InvoiceStatus.OPEN, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    runner = build_runner(container, settings)
    task = asyncio.create_task(runner.run())
    try:
        async with container[UnitOfWork] as uow:
            await uow.repository_for(Invoice).create(invoice)
            await uow.commit()
        await container[JobQueue].enqueue(MARK_INVOICE_PAID, {"invoice_id": invoice.id})
        stored = invoice
        for _ in range(200):
            async with container[UnitOfWork] as uow:
                found = await uow.repository_for(Invoice).get_by_id(invoice.id)
            assert found is not None
            stored = found
            if stored.status is InvoiceStatus.PAID:
                break
            await asyncio.sleep(0.05)
        assert stored.status is InvoiceStatus.PAID
        assert stored.paid_at is not None and stored.version == invoice.version + 1
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)
        await container[Resources].aclose()
