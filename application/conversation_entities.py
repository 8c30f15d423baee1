"""How the WhatsApp flow's entities persist: conversations and their messages.

Written once; every backend builds its tables, statements and checks from these, and
the flow's own queries (``get_open``, ``awaiting_reply``...) are its repositories'
extensions per backend, registered for the ports named here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from application.entities import Column, ColumnType, EntitySpec, Index, UniqueKey
from application.errors import ConcurrencyError
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from domain.conversation import Conversation, ConversationStatus
from domain.errors import DuplicateMessage
from domain.message import DeliveryStatus, Direction, Message, MessageType

ID_LENGTH = 26  # a ULID
S = ColumnType.STRING
T = ColumnType.DATETIME


def _conversation_row(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id, "owner_id": c.owner_id, "contact": c.contact, "channel": c.channel,
        "status": ConversationStatus(c.status).value, "created_at": c.created_at,
        "updated_at": c.updated_at, "last_message_at": c.last_message_at,
        "version": c.version, "holder": c.holder, "held_since": c.held_since,
        "held_until": c.held_until, "needs_person": c.needs_person,
        "closed_reason": c.closed_reason,
    }


def _conversation(row: Mapping[str, Any]) -> Conversation:
    return Conversation(
        id=row["id"], owner_id=row["owner_id"], contact=row["contact"], channel=row["channel"],
        status=ConversationStatus(row["status"]), created_at=row["created_at"],
        updated_at=row["updated_at"], last_message_at=row["last_message_at"],
        version=row["version"], holder=row["holder"], held_since=row["held_since"],
        held_until=row["held_until"], needs_person=bool(row["needs_person"]),
        closed_reason=row["closed_reason"],
    )


def _conversation_conflict(row: Mapping[str, Any]) -> Exception:
    # No domain error exists for this; the caller lost a race for the id or the slot of
    # the one open conversation, which is what ConcurrencyError means to use cases.
    return ConcurrencyError(
        f"conversation {row.get('id')} conflicts with a stored one "
        "(same id, or an open conversation for this owner and contact exists)"
    )


CONVERSATIONS: EntitySpec[Conversation] = EntitySpec(
    entity=Conversation,
    table="conversations",
    columns=(
        Column("id", S, ID_LENGTH),
        Column("owner_id", S, 128),
        Column("contact", S, 128),
        Column("channel", S, 128),
        Column("status", S, 16),
        Column("created_at", T),
        Column("updated_at", T),
        Column("last_message_at", T),
        Column("version", ColumnType.INTEGER),
        # Migration 0005: handoff, the fallback's flag, why it closed.
        Column("holder", S, 128, nullable=True),
        Column("held_since", T, nullable=True),
        Column("held_until", T, nullable=True),
        Column("needs_person", ColumnType.BOOLEAN),
        Column("closed_reason", S, 16, nullable=True),
    ),
    to_row=_conversation_row,
    from_row=_conversation,
    # At most one open conversation per owner and contact; closed ones are unlimited.
    unique=(
        UniqueKey(("owner_id", "contact"), _conversation_conflict,
                  where=("status", ConversationStatus.OPEN.value),
                  name="uq_conversations_open_owner_contact"),
    ),
    # One owner's conversations, a page at a time (the internal API); without it a small
    # owner's page reads the other owners' conversations in key order.
    indexes=(Index(("owner_id", "id")),),
    port=ConversationRepository,
    conflict_error=_conversation_conflict,
)


def _message_row(m: Message) -> dict[str, Any]:
    return {
        "id": m.id, "conversation_id": m.conversation_id, "owner_id": m.owner_id,
        "direction": Direction(m.direction).value, "type": MessageType(m.type).value,
        "body": m.body, "from_address": m.from_address, "to_address": m.to_address,
        "status": DeliveryStatus(m.status).value, "provider_sid": m.provider_sid,
        "reply_to_id": m.reply_to_id, "error_code": m.error_code, "metadata": m.metadata,
        "created_at": m.created_at, "updated_at": m.updated_at, "version": m.version,
    }


def _message(row: Mapping[str, Any]) -> Message:
    return Message(
        id=row["id"], conversation_id=row["conversation_id"], owner_id=row["owner_id"],
        direction=Direction(row["direction"]), type=MessageType(row["type"]), body=row["body"],
        from_address=row["from_address"], to_address=row["to_address"],
        status=DeliveryStatus(row["status"]), created_at=row["created_at"],
        updated_at=row["updated_at"], provider_sid=row["provider_sid"],
        reply_to_id=row["reply_to_id"], error_code=row["error_code"],
        metadata=row["metadata"], version=row["version"],
    )


def _duplicate_message(row: Mapping[str, Any]) -> Exception:
    return DuplicateMessage(str(row.get("provider_sid") or row.get("reply_to_id") or row.get("id")))


MESSAGES: EntitySpec[Message] = EntitySpec(
    entity=Message,
    table="messages",
    columns=(
        Column("id", S, ID_LENGTH),
        Column("conversation_id", S, ID_LENGTH, references="conversations.id",
               on_delete="CASCADE"),
        Column("owner_id", S, 128),
        Column("direction", S, 16),
        Column("type", S, 16),
        Column("body", ColumnType.TEXT),
        Column("from_address", S, 128),
        Column("to_address", S, 128),
        Column("status", S, 16),
        Column("provider_sid", S, 64, nullable=True),
        # Unique: at most one reply per inbound message (the reply job's idempotency key).
        Column("reply_to_id", S, ID_LENGTH, nullable=True, references="messages.id",
               on_delete="SET NULL"),
        Column("error_code", S, 32, nullable=True),
        Column("metadata", ColumnType.JSON),
        Column("created_at", T),
        Column("updated_at", T),
        Column("version", ColumnType.INTEGER),
    ),
    to_row=_message_row,
    from_row=_message,
    unique=(
        UniqueKey(("provider_sid",), _duplicate_message),
        UniqueKey(("reply_to_id",), _duplicate_message),
    ),
    # Every query the flow makes is served by one of these (tests/adapters/test_query_plans.py):
    # a scan of this table grows with everything ever received.
    indexes=(
        # Conversation history and its keyset pagination.
        Index(("conversation_id", "id")),
        # Before each send: has this contact opted out or become unreachable (window.py)?
        Index(("to_address", "from_address", "error_code")),
        # Did this contact write to this channel since a time (the 24-hour window)?
        Index(("from_address", "to_address", "created_at")),
        # The sweep: replies stored but never sent (status pending).
        Index(("status", "created_at")),
        # The sweep: recent inbound messages with no reply yet. Not (direction, ...): SQLite
        # would take that for any query naming a direction, and read half the table.
        Index(("created_at",)),
    ),
    port=MessageRepository,
    conflict_error=_duplicate_message,
)

ENTITIES: tuple[EntitySpec[Any], ...] = (CONVERSATIONS, MESSAGES)
