"""Reading one owner's invoice: the billing module's port and use case (stdlib only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from application.errors import NotFound
from tests.modules.billing.domain import Invoice


class InvoiceReader(Protocol):
    """Invoices by id. Answers None for an unknown id; never raises for one."""

    async def get(self, invoice_id: str) -> Invoice | None: ...


@dataclass(frozen=True, slots=True)
class InvoiceLookup:
    owner_id: str
    invoice_id: str


class GetInvoice:
    """One invoice of the caller's owner. Another owner's invoice is not found, the same
    answer as an unknown id, so ids reveal nothing across owners."""

    def __init__(self, invoices: InvoiceReader) -> None:
        self._invoices = invoices

    async def execute(self, request: InvoiceLookup) -> Invoice:
        invoice = await self._invoices.get(request.invoice_id)
        if invoice is None or invoice.owner_id != request.owner_id:
            raise NotFound(f"invoice {request.invoice_id} not found")
        return invoice
