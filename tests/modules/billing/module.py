"""The billing example module, composed through the kernel's public API only."""

from __future__ import annotations

from lagom import Container

from application.ports.unit_of_work import UnitOfWork
from bootstrap.module import Module
from tests.modules.billing.persistence import INVOICES
from tests.modules.billing.reading import InvoiceReader
from tests.modules.billing.routes import routers
from tests.modules.billing.settings import BillingSettings
from tests.modules.billing.stores import LoggedOpenInvoices, StoredInvoices
from tests.modules.billing.tasks import PERIODIC, TASKS, InvoiceLedger, OpenInvoiceReport


def bind(container: Container, settings: BillingSettings) -> None:
    """The module's own ports. Its settings are already bound (container[BillingSettings]).

    Invoices are read and written through the kernel's unit of work, so they live in the
    deployment's database; a fresh unit per use, like every use case's.
    """
    def stored() -> StoredInvoices:
        return StoredInvoices(container[UnitOfWork])

    container[InvoiceReader] = stored
    container[InvoiceLedger] = stored
    container[OpenInvoiceReport] = LoggedOpenInvoices()


MODULE = Module(
    name="billing",
    entities=(INVOICES,),
    tasks=TASKS,
    periodic=PERIODIC,
    routers=routers,
    settings=BillingSettings,
    bind=bind,
)
