"""The example module's entity: an invoice, unique by (owner, number)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from domain.errors import DomainError


class InvoiceStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"


class DuplicateInvoice(DomainError):
    code = "DUPLICATE_INVOICE"


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    owner_id: str
    number: str
    amount_cents: int
    status: InvoiceStatus
    created_at: datetime
    paid_at: datetime | None = None
    version: int = 0

    def paid(self, at: datetime) -> Invoice:
        return self if self.status is InvoiceStatus.PAID else replace(
            self, status=InvoiceStatus.PAID, paid_at=at)
