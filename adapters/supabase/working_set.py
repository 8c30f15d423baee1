"""What one unit of work has written but not committed: the rows it would leave behind
(read back by its own reads) and the operations ``wta_apply_unit`` replays at commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class WorkingSet:
    # table -> id -> the entity as this unit sees it; None: deleted by this unit.
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    ops: list[dict[str, Any]] = field(default_factory=list)

    def table(self, name: str) -> dict[str, Any]:
        return self.rows.setdefault(name, {})

    def clear(self) -> None:
        self.rows.clear()
        self.ops.clear()

    def record(self, op: dict[str, Any], table: str, entity_id: str, row: Any) -> None:
        self.ops.append(op)
        self.table(table)[entity_id] = row
