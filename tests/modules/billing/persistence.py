"""How the example module's invoices persist: one declaration, every backend.

The table is the module's own: no kernel migration creates it (tests build it from this
spec), and it is served by the generic repository, ``uow.repository_for(Invoice)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from application.entities import Column, ColumnType, EntitySpec, UniqueKey, dataclass_rows
from tests.modules.billing.domain import DuplicateInvoice, Invoice


def _duplicate(row: Mapping[str, Any]) -> Exception:
    return DuplicateInvoice(f"invoice {row.get('number')} of {row.get('owner_id')} exists")


_to_row, _from_row = dataclass_rows(Invoice)

INVOICES: EntitySpec[Invoice] = EntitySpec(
    entity=Invoice,
    table="invoices",
    columns=(
        Column("id", ColumnType.STRING, 26),
        Column("owner_id", ColumnType.STRING, 128),
        Column("number", ColumnType.STRING, 32),
        Column("amount_cents", ColumnType.INTEGER),
        Column("status", ColumnType.STRING, 16),
        Column("created_at", ColumnType.DATETIME),
        Column("paid_at", ColumnType.DATETIME, nullable=True),
        Column("version", ColumnType.INTEGER),
    ),
    to_row=_to_row,
    from_row=_from_row,
    unique=(UniqueKey(("owner_id", "number"), _duplicate),),
    conflict_error=_duplicate,
)
