"""An in-memory ``InvoiceReader``: what the module binds until its entity is persisted
through the kernel's generic repositories."""

from __future__ import annotations

from tests.modules.billing.domain import Invoice


class InMemoryInvoices:
    def __init__(self) -> None:
        self._rows: dict[str, Invoice] = {}

    def add(self, invoice: Invoice) -> None:
        self._rows[invoice.id] = invoice

    async def get(self, invoice_id: str) -> Invoice | None:
        return self._rows.get(invoice_id)
