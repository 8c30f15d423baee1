"""Seeds an app database with earlier traffic, so a benchmark meets a table of real size.

A deployment's ``messages`` table holds every message since it started; a query that
scans it costs more every day, and on an empty database nothing shows it (a scan per
reply went unseen until 2026-12-01). So the end-to-end benchmarks first seed
``BENCH_HISTORY`` earlier messages (50,000 unless set; 0 for an empty database): closed
conversations of ``HISTORY_CONTACTS`` contacts (the benchmark's own among them), each with
delivered inbound/reply pairs, all older than a day. Seeding 50,000 takes about 2 s on
SQLite and 4 s on PostgreSQL per run.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, select

from adapters.sqlalchemy.engine import sync_url
from adapters.sqlalchemy.schema import build_metadata
from bench.delivery_servers import ACCOUNT_SID
from bench.open_loop import OUR_NUMBER
from bootstrap.modules.whatsapp import MODULE as WHATSAPP
from domain.ids import new_ulid

HISTORY_CONTACTS = 10_000
_BATCH = 5_000


def history_size() -> int:
    return int(os.environ.get("BENCH_HISTORY", "50000"))


def _contact(i: int) -> str:
    # The open loop's contacts are whatsapp:+55119 and 8 digits from 0: they are among these.
    return f"whatsapp:+55119{i % HISTORY_CONTACTS:08d}"


def _sid(n: int) -> str:
    return f"SMhistory{n:024d}"


def _rows(messages: int, start: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    contacts = min(HISTORY_CONTACTS, max(1, messages // 2))
    conversations = [{
        "id": new_ulid(int(start.timestamp() * 1000)), "owner_id": ACCOUNT_SID,
        "contact": _contact(i), "channel": OUR_NUMBER, "status": "closed",
        "created_at": start, "updated_at": start, "last_message_at": start, "version": 2,
        "holder": None, "held_since": None, "held_until": None, "needs_person": False,
        "closed_reason": "idle",
    } for i in range(contacts)]
    rows: list[dict[str, Any]] = []
    for n in range(messages):
        i = (n // 2) % contacts
        at = start + timedelta(seconds=n)
        inbound = n % 2 == 0
        contact = _contact(i)
        rows.append({
            "id": new_ulid(int(at.timestamp() * 1000)),
            "conversation_id": conversations[i]["id"], "owner_id": ACCOUNT_SID,
            "direction": "inbound" if inbound else "outbound", "type": "text",
            "body": f"earlier message {n}",
            "from_address": contact if inbound else OUR_NUMBER,
            "to_address": OUR_NUMBER if inbound else contact,
            "status": "received" if inbound else "delivered",
            "provider_sid": _sid(n),
            # Each reply answers the inbound message just before it.
            "reply_to_id": None if inbound else rows[-1]["id"], "error_code": None,
            "metadata": {}, "created_at": at, "updated_at": at, "version": 1,
        })
    return conversations, rows


def seed(database_url: str, messages: int) -> None:
    """Insert ``messages`` earlier messages (and their conversations) into a migrated DB,
    once: a database that already has them is left as it is."""
    if messages <= 0:
        return
    tables = build_metadata(WHATSAPP.entities).tables
    messages_table = tables["messages"]
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            seeded = select(messages_table.c.id).where(messages_table.c.provider_sid == _sid(0))
            if connection.execute(seeded).first() is not None:
                return  # a database reused between runs already has its history
            start = datetime.now(UTC) - timedelta(days=2, seconds=messages)
            conversations, rows = _rows(messages, start)
            connection.execute(tables["conversations"].insert(), conversations)
            for i in range(0, len(rows), _BATCH):
                connection.execute(messages_table.insert(), rows[i:i + _BATCH])
    finally:
        engine.dispose()
