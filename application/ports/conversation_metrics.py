"""Counting what the conversation lifecycle does, for dashboards and alerts."""

from __future__ import annotations

from typing import Protocol


class ConversationMetrics(Protocol):
    def closed(self, reason: str) -> None:
        """One conversation closed, by ``reason`` (``idle``, ``expired``). Never raises."""
        ...


class NoMetrics:
    def closed(self, reason: str) -> None:
        return None
