from __future__ import annotations

from domain.ids import new_ulid


class UlidGenerator:
    def new_id(self) -> str:
        return new_ulid()
