"""Whether an owner may get an automatic reply now: the seam the reply path asks
before calling the model (plans and quotas live behind it, in an identity module).

``take`` counts the reply it allows, atomically across processes; a refusal may carry a
notice to send instead (once per period), else the reply is withheld in silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Allowance:
    reply: bool = True
    notice: str | None = None  # sent instead of the reply, when refused


ALLOWED = Allowance()


class ReplyAllowance(Protocol):
    async def take(self, owner_id: str) -> Allowance: ...


class Unlimited:
    """Every owner may always get a reply (a deployment without plans)."""

    async def take(self, owner_id: str) -> Allowance:
        return ALLOWED
