"""The example module's tasks: mark an invoice paid (queued), count open invoices (periodic).

The use cases depend on the module's own ports (``InvoiceLedger``, ``OpenInvoiceReport``),
bound in the container by whoever composes the module; nothing here names a backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from application.errors import PermanentJobError
from application.ports.clock import Clock
from application.tasks import PeriodicSpec, TaskSpec
from tests.modules.billing.domain import Invoice

MARK_INVOICE_PAID = "billing.mark_invoice_paid"
COUNT_OPEN_INVOICES = "billing.count_open_invoices"
COUNT_EVERY_SECONDS = 1.0


class InvoiceLedger(Protocol):
    """Where the billing tasks read and write invoices."""

    async def get(self, invoice_id: str) -> Invoice | None: ...

    async def update(self, invoice: Invoice) -> None: ...

    async def count_open(self) -> int: ...


class OpenInvoiceReport(Protocol):
    """Where the periodic count is recorded (a metric, a table, a log in a real module)."""

    async def record(self, open_invoices: int) -> None: ...


@dataclass(frozen=True, slots=True)
class MarkInvoicePaidPayload:
    invoice_id: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> MarkInvoicePaidPayload:
        value = payload.get("invoice_id")
        if not isinstance(value, str) or not value:
            raise PermanentJobError(f"payload field 'invoice_id' missing or not a string: "
                                    f"{payload!r}")
        return cls(value)

    def to_payload(self) -> dict[str, Any]:
        return {"invoice_id": self.invoice_id}

    @property
    def dedup_key(self) -> str:
        return f"{MARK_INVOICE_PAID}:{self.invoice_id}"


class MarkInvoicePaid:
    """Idempotent: an invoice already paid stays as it is (its first payment time)."""

    def __init__(self, ledger: InvoiceLedger, clock: Clock) -> None:
        self._ledger = ledger
        self._clock = clock

    async def execute(self, request: MarkInvoicePaidPayload) -> Invoice:
        invoice = await self._ledger.get(request.invoice_id)
        if invoice is None:
            raise PermanentJobError(f"no invoice {request.invoice_id!r}")
        paid = invoice.paid(self._clock.now())
        if paid is not invoice:
            await self._ledger.update(paid)
        return paid


class CountOpenInvoices:
    """Safe on several workers at once: it only reads and records a count."""

    def __init__(self, ledger: InvoiceLedger, report: OpenInvoiceReport) -> None:
        self._ledger = ledger
        self._report = report

    async def execute(self) -> int:
        count = await self._ledger.count_open()
        await self._report.record(count)
        return count


TASKS = (TaskSpec(MARK_INVOICE_PAID, MarkInvoicePaidPayload, MarkInvoicePaid),)
PERIODIC = (PeriodicSpec(COUNT_OPEN_INVOICES, COUNT_EVERY_SECONDS, CountOpenInvoices),)
