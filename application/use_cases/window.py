"""WhatsApp's customer-service window: free-form text only within 24 hours of the
contact's last message to this number.

Derived from the stored inbound messages (the latest one from the contact to the
channel), so it needs no column of its own and holds across conversations.
"""

from __future__ import annotations

from datetime import datetime

from application.ports.repository import Condition
from application.ports.unit_of_work import UnitOfWork
from domain.message import Direction


async def window_is_open(uow: UnitOfWork, contact: str, channel: str, since: datetime) -> bool:
    """True when ``contact`` wrote to ``channel`` at or after ``since``."""
    page = await uow.messages.query(
        [
            Condition("from_address", "eq", contact),
            Condition("to_address", "eq", channel),
            Condition("direction", "eq", Direction.INBOUND.value),
            Condition("created_at", "gte", since),
        ],
        limit=1,
    )
    return bool(page.items)
