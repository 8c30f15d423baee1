"""What one unit of work has written but not committed: the rows it would leave behind
(read back by its own reads) and the operations ``wta_apply_unit`` replays at commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.conversation import Conversation
from domain.message import Message

Entity = Conversation | Message


@dataclass
class WorkingSet:
    # table -> id -> the row as this unit sees it; None: deleted by this unit.
    rows: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"conversations": {}, "messages": {}}
    )
    ops: list[dict[str, Any]] = field(default_factory=list)

    def clear(self) -> None:
        for table in self.rows.values():
            table.clear()
        self.ops.clear()

    def record(self, op: dict[str, Any], table: str, entity_id: str, row: Entity | None) -> None:
        self.ops.append(op)
        self.rows[table][entity_id] = row
