"""Whether a contact may be messaged now. WhatsApp's customer-service window: free-form
text only within 24 hours of the contact's last message to this number; and a contact who
opted out or cannot be reached is not messaged again until they write.

Derived from the stored inbound messages (the latest one from the contact to the
channel), so it needs no column of its own and holds across conversations.
"""

from __future__ import annotations

from datetime import datetime

from application.ports.message_repository import MessageRepository
from application.ports.repository import Condition
from application.ports.unit_of_work import UnitOfWork
from domain.delivery_errors import blocking_codes
from domain.message import Direction


async def window_is_open(uow: UnitOfWork, contact: str, channel: str, since: datetime) -> bool:
    """True when ``contact`` wrote to ``channel`` at or after ``since``."""
    page = await uow.repository(MessageRepository).query(
        [
            Condition("from_address", "eq", contact),
            Condition("to_address", "eq", channel),
            Condition("direction", "eq", Direction.INBOUND.value),
            Condition("created_at", "gte", since),
        ],
        limit=1,
    )
    return bool(page.items)


# Enough for any real contact: after one blocking failure nothing more is sent to them.
_BLOCKING_SCAN = 200


async def contact_block(uow: UnitOfWork, contact: str, channel: str) -> str | None:
    """The error code that blocks sending to ``contact`` (opted out, unreachable), or None.

    A contact is blocked when a message to them failed with such a code and they have not
    written since; derived from the stored messages, so it needs no table of its own.
    """
    page = await uow.repository(MessageRepository).query(
        [
            Condition("to_address", "eq", contact),
            Condition("from_address", "eq", channel),
            Condition("direction", "eq", Direction.OUTBOUND.value),
            Condition("error_code", "in", sorted(blocking_codes())),
        ],
        limit=_BLOCKING_SCAN,
    )
    if not page.items:
        return None
    latest = max(page.items, key=lambda m: m.updated_at)
    if await window_is_open(uow, contact, channel, latest.updated_at):
        return None  # they wrote after the failure: messaging is allowed again
    return latest.error_code
