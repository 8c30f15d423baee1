"""``GET /api/v1/invoices/{id}``: one invoice of the caller's owner."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from lagom import Container
from pydantic import BaseModel

from adapters.fastapi.openapi import error_responses
from adapters.fastapi.security import Principal
from bootstrap.module import Routing
from tests.modules.billing.domain import Invoice
from tests.modules.billing.reading import GetInvoice, InvoiceLookup
from tests.modules.billing.settings import BillingSettings

PREFIX = "/api/v1"
InvoiceId = Annotated[str, Path(pattern=r"^[0-9A-Za-z]{26}$")]


class InvoiceOut(BaseModel):
    id: str
    number: str
    amount_cents: int
    currency: str
    status: str
    created_at: datetime
    paid_at: datetime | None

    @classmethod
    def of(cls, invoice: Invoice, currency: str) -> InvoiceOut:
        return cls(id=invoice.id, number=invoice.number, amount_cents=invoice.amount_cents,
                   currency=currency, status=str(invoice.status),
                   created_at=invoice.created_at, paid_at=invoice.paid_at)


def routers(container: Container) -> Sequence[APIRouter]:
    routing = container[Routing]
    currency = container[BillingSettings].currency
    router = APIRouter(prefix=PREFIX, tags=["billing"])
    get_invoice = routing.use_case(GetInvoice)
    authenticate = routing.authenticate

    @router.get("/invoices/{invoice_id}", response_model=InvoiceOut,
                responses=error_responses(401, 404, 422, 503))
    async def read_invoice(
        invoice_id: InvoiceId, principal: Principal = authenticate,
        use_case: Any = get_invoice,
    ) -> InvoiceOut:
        invoice = await use_case.execute(InvoiceLookup(principal.owner_id, invoice_id))
        return InvoiceOut.of(invoice, currency)

    return [router]
