"""How owners, numbers, plans, usage and the directory revision persist (every backend)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from application.entities import Column, ColumnType, EntitySpec, UniqueKey, dataclass_rows
from application.errors import ConcurrencyError
from domain.identity.owner import (
    DirectoryRevision,
    DuplicateOwner,
    NumberTaken,
    Owner,
    OwnerNumber,
    Plan,
    Usage,
)

ID = Column("id", ColumnType.STRING, 64)
VERSION = Column("version", ColumnType.INTEGER)


def _error(make: Callable[[str], Exception], text: str) -> Callable[[Mapping[str, Any]], Exception]:
    def error(row: Mapping[str, Any]) -> Exception:
        return make(text.format(**{k: row.get(k) for k in ("id", "number", "account_sid")}))
    return error


_owner_rows = dataclass_rows(Owner)
OWNERS: EntitySpec[Owner] = EntitySpec(
    entity=Owner,
    table="identity_owners",
    columns=(
        ID,
        Column("name", ColumnType.STRING, 200),
        Column("account_sid", ColumnType.STRING, 64),
        Column("sealed_token", ColumnType.TEXT),
        Column("enabled", ColumnType.BOOLEAN),
        Column("created_at", ColumnType.DATETIME),
        Column("plan_id", ColumnType.STRING, 64, nullable=True),
        Column("answers", ColumnType.BOOLEAN),
        Column("system_prompt", ColumnType.TEXT, nullable=True),
        Column("model", ColumnType.STRING, 200, nullable=True),
        Column("reply_language", ColumnType.STRING, 35, nullable=True),
        Column("temperature", ColumnType.FLOAT, nullable=True),
        Column("fallback_message", ColumnType.TEXT, nullable=True),
        Column("closing_message", ColumnType.TEXT, nullable=True),
        Column("vision", ColumnType.BOOLEAN, nullable=True),
        VERSION,
    ),
    to_row=_owner_rows[0],
    from_row=_owner_rows[1],
    conflict_error=_error(DuplicateOwner, "owner {id} exists"),
)

_number_rows = dataclass_rows(OwnerNumber)
OWNER_NUMBERS: EntitySpec[OwnerNumber] = EntitySpec(
    entity=OwnerNumber,
    table="identity_numbers",
    columns=(
        ID,
        Column("owner_id", ColumnType.STRING, 64),
        Column("number", ColumnType.STRING, 32),
        VERSION,
    ),
    to_row=_number_rows[0],
    from_row=_number_rows[1],
    unique=(UniqueKey(("number",), _error(NumberTaken, "number {number} has an owner")),),
    conflict_error=_error(NumberTaken, "number {number} has an owner"),
)

_plan_rows = dataclass_rows(Plan)
PLANS: EntitySpec[Plan] = EntitySpec(
    entity=Plan,
    table="identity_plans",
    columns=(
        ID,
        Column("name", ColumnType.STRING, 200),
        Column("assistant", ColumnType.BOOLEAN),
        Column("media", ColumnType.BOOLEAN),
        Column("monthly_quota", ColumnType.INTEGER, nullable=True),
        Column("over_quota", ColumnType.STRING, 16),
        Column("notice", ColumnType.TEXT, nullable=True),
        VERSION,
    ),
    to_row=_plan_rows[0],
    from_row=_plan_rows[1],
    conflict_error=lambda row: ConcurrencyError(f"plan {row.get('id')} exists"),
)

_usage_rows = dataclass_rows(Usage)
USAGE: EntitySpec[Usage] = EntitySpec(
    entity=Usage,
    table="identity_usage",
    columns=(
        ID,
        Column("owner_id", ColumnType.STRING, 64),
        Column("period", ColumnType.STRING, 8),
        Column("replies", ColumnType.INTEGER),
        Column("notices", ColumnType.INTEGER),
        VERSION,
    ),
    to_row=_usage_rows[0],
    from_row=_usage_rows[1],
    # A second first writer of one period loses on the primary key and retries.
    conflict_error=lambda row: ConcurrencyError(f"usage {row.get('id')} was created meanwhile"),
)

_revision_rows = dataclass_rows(DirectoryRevision)
REVISIONS: EntitySpec[DirectoryRevision] = EntitySpec(
    entity=DirectoryRevision,
    table="identity_revision",
    columns=(ID, Column("revision", ColumnType.INTEGER), VERSION),
    to_row=_revision_rows[0],
    from_row=_revision_rows[1],
    conflict_error=lambda row: ConcurrencyError("the directory revision moved meanwhile"),
)

IDENTITY_ENTITIES: tuple[EntitySpec[Any], ...] = (OWNERS, OWNER_NUMBERS, PLANS, USAGE, REVISIONS)
