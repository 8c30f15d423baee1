"""The example module, composed through the kernel's public API only."""

from __future__ import annotations

from bootstrap.module import Module
from tests.modules.billing.persistence import INVOICES

MODULE = Module(name="billing", entities=(INVOICES,))
