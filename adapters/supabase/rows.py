"""Entities <-> PostgREST JSON rows, and ``Condition`` both as PostgREST filters and as
Python predicates (for the unit's own, not yet committed, rows)."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from postgrest.base_request_builder import BaseFilterRequestBuilder

from application.ports.condition_matcher import matcher as match_all
from application.ports.repository import Condition
from domain.conversation import Conversation, ConversationStatus
from domain.message import DeliveryStatus, Direction, Message, MessageType

Row = dict[str, Any]
B = TypeVar("B", bound=BaseFilterRequestBuilder[Any])


def wire_time(value: datetime) -> str:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware datetime")
    return value.astimezone(UTC).isoformat()


def parse_time(text: str) -> datetime:
    # PostgREST renders timestamptz in the session's zone; callers always get UTC.
    return datetime.fromisoformat(text).astimezone(UTC)


def wire_value(value: object) -> str:
    """A filter value as PostgREST text."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return wire_time(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def conversation_row(c: Conversation) -> Row:
    return {
        "id": c.id, "owner_id": c.owner_id, "contact": c.contact, "channel": c.channel,
        "status": ConversationStatus(c.status).value, "created_at": wire_time(c.created_at),
        "updated_at": wire_time(c.updated_at), "last_message_at": wire_time(c.last_message_at),
        "version": c.version,
    }


def conversation_from(row: Mapping[str, Any]) -> Conversation:
    return Conversation(
        id=row["id"], owner_id=row["owner_id"], contact=row["contact"], channel=row["channel"],
        status=ConversationStatus(row["status"]), created_at=parse_time(row["created_at"]),
        updated_at=parse_time(row["updated_at"]),
        last_message_at=parse_time(row["last_message_at"]), version=row["version"],
    )


def message_row(m: Message) -> Row:
    return {
        "id": m.id, "conversation_id": m.conversation_id, "owner_id": m.owner_id,
        "direction": Direction(m.direction).value, "type": MessageType(m.type).value,
        "body": m.body, "from_address": m.from_address, "to_address": m.to_address,
        "status": DeliveryStatus(m.status).value, "provider_sid": m.provider_sid,
        "reply_to_id": m.reply_to_id, "error_code": m.error_code,
        # A JSON round trip now: the caller may mutate its dict after the call.
        "metadata": json.loads(json.dumps(m.metadata)),
        "created_at": wire_time(m.created_at), "updated_at": wire_time(m.updated_at),
        "version": m.version,
    }


def message_from(row: Mapping[str, Any]) -> Message:
    return Message(
        id=row["id"], conversation_id=row["conversation_id"], owner_id=row["owner_id"],
        direction=Direction(row["direction"]), type=MessageType(row["type"]), body=row["body"],
        from_address=row["from_address"], to_address=row["to_address"],
        status=DeliveryStatus(row["status"]), created_at=parse_time(row["created_at"]),
        updated_at=parse_time(row["updated_at"]), provider_sid=row["provider_sid"],
        reply_to_id=row["reply_to_id"], error_code=row["error_code"],
        metadata=row["metadata"], version=row["version"],
    )


def apply_filter(builder: B, condition: Condition) -> B:
    """Add one (already validated) condition to a PostgREST request."""
    column, op, value = condition.column, condition.op, condition.value
    if op == "is_null" or (value is None and op in ("eq", "neq")):
        is_null = value if op == "is_null" else op == "eq"
        return builder.filter(column, "is", "null") if is_null else (
            builder.not_.filter(column, "is", "null"))
    if op == "in":
        assert isinstance(value, Collection)
        return builder.in_(column, [wire_value(v) for v in value])
    if op == "like":
        return builder.filter(column, "like", str(value))
    return builder.filter(column, op, wire_value(value))


def matcher(conditions: Sequence[Condition]) -> Callable[[object], bool]:
    """True for an entity every condition holds for; ``*`` is a LIKE wildcard, as in PostgREST."""
    return match_all(conditions, star_is_wildcard=True)
