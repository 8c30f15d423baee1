"""The billing example module, composed through the kernel's public API only."""

from __future__ import annotations

from lagom import Container

from bootstrap.module import Module
from tests.modules.billing.memory import InMemoryInvoices
from tests.modules.billing.persistence import INVOICES
from tests.modules.billing.reading import InvoiceReader
from tests.modules.billing.routes import routers
from tests.modules.billing.settings import BillingSettings
from tests.modules.billing.tasks import PERIODIC, TASKS


def bind(container: Container, settings: BillingSettings) -> None:
    """The module's own ports. Its settings are already bound (container[BillingSettings])."""
    invoices = InMemoryInvoices()
    container[InMemoryInvoices] = invoices  # the tests' handle for seeding
    container[InvoiceReader] = invoices  # type: ignore[type-abstract]


MODULE = Module(
    name="billing",
    entities=(INVOICES,),
    tasks=TASKS,
    periodic=PERIODIC,
    routers=routers,
    settings=BillingSettings,
    bind=bind,
)
