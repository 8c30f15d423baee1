"""The example module, declared through the kernel's public API only."""

from __future__ import annotations

from bootstrap.module import Module
from tests.modules.billing.persistence import INVOICES
from tests.modules.billing.tasks import PERIODIC, TASKS

MODULE = Module(
    name="billing",
    entities=(INVOICES,),
    tasks=TASKS,
    periodic=PERIODIC,
)
