"""In-memory implementations of the billing module's own ports, for tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from application.errors import ConcurrencyError
from tests.modules.billing.domain import Invoice, InvoiceStatus


class InMemoryInvoiceLedger:
    def __init__(self, *invoices: Invoice) -> None:
        self.rows = {invoice.id: invoice for invoice in invoices}

    async def get(self, invoice_id: str) -> Invoice | None:
        return self.rows.get(invoice_id)

    async def update(self, invoice: Invoice) -> None:
        stored = self.rows.get(invoice.id)
        if stored is None or stored.version != invoice.version:
            raise ConcurrencyError(f"invoice {invoice.id!r} changed meanwhile")
        self.rows[invoice.id] = replace(invoice, version=invoice.version + 1)

    async def count_open(self) -> int:
        return sum(1 for i in self.rows.values() if i.status is InvoiceStatus.OPEN)


@dataclass
class RecordedCounts:
    """Every count the periodic task recorded, in order; ``changed`` is set on each."""

    counts: list[int] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def record(self, open_invoices: int) -> None:
        self.counts.append(open_invoices)
        self.changed.set()
