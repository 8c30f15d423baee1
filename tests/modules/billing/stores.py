"""The billing ports over the kernel's unit of work: invoices live in whichever database
the deployment chose, through the generic repository of the ``INVOICES`` declaration."""

from __future__ import annotations

import logging

from application.ports.unit_of_work import UnitOfWork
from tests.modules.billing.domain import Invoice, InvoiceStatus

log = logging.getLogger(__name__)


class StoredInvoices:
    """``InvoiceReader`` and ``InvoiceLedger``, one short unit of work per call."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def get(self, invoice_id: str) -> Invoice | None:
        async with self._uow as uow:
            return await uow.repository_for(Invoice).get_by_id(invoice_id)

    async def update(self, invoice: Invoice) -> None:
        async with self._uow as uow:
            await uow.repository_for(Invoice).update(invoice)
            await uow.commit()

    async def count_open(self) -> int:
        async with self._uow as uow:
            return await uow.repository_for(Invoice).count({"status": InvoiceStatus.OPEN.value})


class LoggedOpenInvoices:
    """``OpenInvoiceReport`` for a deployment: the periodic count as a log line."""

    async def record(self, open_invoices: int) -> None:
        log.info("open invoices: %d", open_invoices)
