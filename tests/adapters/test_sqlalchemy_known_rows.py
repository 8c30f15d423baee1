"""An update SETs only what changed since the version this process last read or wrote
(adapters/sqlalchemy/known_rows.py), and what a unit wrote without committing is forgotten.

On the embedded defaults' loop sessions; the statements are read from SQLAlchemy's
``before_cursor_execute`` event.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from adapters.sqlalchemy.known_rows import known_rows
from adapters.sqlalchemy.loop_sqlite import LoopSessionFactory
from adapters.sqlalchemy.tables import metadata
from adapters.sqlalchemy.unit_of_work import SqlaUnitOfWork
from application.errors import ConcurrencyError
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from domain.conversation import Conversation
from domain.message import DeliveryStatus, Message
from tests.adapters.loop_sessions import loop_sessions
from tests.contracts.repositories import T0, conversation, message


class Recorded:
    def __init__(self, factory: LoopSessionFactory) -> None:
        self.factory = factory
        self.statements: list[str] = []

        def record(*args: Any) -> None:
            self.statements.append(args[2])

        event.listen(factory.engine, "before_cursor_execute", record)

    def uow(self) -> SqlaUnitOfWork:
        return SqlaUnitOfWork(self.factory)

    def set_columns(self, table: str) -> list[list[str]]:
        """The SET columns of each UPDATE of ``table`` since the last call."""
        found = [sorted(re.findall(r"(\w+)=\?", s.split(" WHERE ")[0]))
                 for s in self.statements if s.startswith(f"UPDATE {table} SET")]
        self.statements.clear()
        return found


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Recorded]:
    async with loop_sessions(tmp_path / "app.db", metadata) as factory:
        yield Recorded(factory)


async def _stored(db: Recorded) -> tuple[Conversation, Message]:
    conv = conversation()
    msg = message(conv.id, body="a body that no status change rewrites")
    async with db.uow() as uow:
        await uow.repository(ConversationRepository).create(conv)
        await uow.repository(MessageRepository).create(msg)
        await uow.commit()
    db.statements.clear()
    return conv, msg


async def _read(db: Recorded, message_id: str) -> Message | None:
    async with db.uow() as uow:
        return await uow.repository(MessageRepository).get_by_id(message_id)


async def test_an_update_sets_only_the_columns_that_changed(db: Recorded) -> None:
    _, msg = await _stored(db)
    async with db.uow() as uow:
        messages = uow.repository(MessageRepository)
        read = await messages.get_by_id(msg.id)
        assert read is not None
        sent = await messages.update(replace(read, status=DeliveryStatus.SENT,
                                             provider_sid="SMsent", updated_at=T0.replace(hour=1)))
        await uow.commit()
    assert db.set_columns("messages") == [["provider_sid", "status", "updated_at", "version"]]
    assert await _read(db, msg.id) == sent  # the columns left alone kept their values

    # The next update starts from the version this one wrote, without reading it again.
    async with db.uow() as uow:
        await uow.repository(MessageRepository).update(replace(sent, error_code="63016"))
        await uow.commit()
    assert db.set_columns("messages") == [["error_code", "version"]]
    assert await _read(db, msg.id) == replace(sent, error_code="63016", version=sent.version + 1)


async def test_an_unchanged_entity_moves_only_its_version(db: Recorded) -> None:
    conv, _ = await _stored(db)
    async with db.uow() as uow:
        conversations = uow.repository(ConversationRepository)
        touched = await conversations.update(conv)  # created by this process: known
        await uow.commit()
    assert db.set_columns("conversations") == [["version"]]
    assert touched.version == conv.version + 1

    # The version still guards: an update at the old version is refused.
    with pytest.raises(ConcurrencyError):
        async with db.uow() as uow:
            await uow.repository(ConversationRepository).update(conv)
            await uow.commit()


async def test_a_row_this_process_does_not_know_is_written_whole(
        db: Recorded, tmp_path: Path) -> None:
    _, msg = await _stored(db)
    # Another process (another engine on the same file) wrote this version: unknown here.
    async with loop_sessions(tmp_path / "app.db", metadata) as other_factory:
        other = Recorded(other_factory)
        async with other.uow() as uow:
            await uow.repository(MessageRepository).update(
                replace(msg, status=DeliveryStatus.FAILED))
            await uow.commit()
        assert "body" in other.set_columns("messages")[0]
    stored = await _read(db, msg.id)
    assert stored is not None and stored.status is DeliveryStatus.FAILED


async def test_what_a_unit_wrote_without_committing_is_forgotten(db: Recorded) -> None:
    _, msg = await _stored(db)
    rows = known_rows(db.factory.engine)
    async with db.uow() as uow:
        await uow.repository(MessageRepository).update(replace(msg, body="rolled back"))
        await uow.rollback()
    assert rows.get("messages", msg.id, msg.version + 1) is None
    async with db.uow() as uow:
        await uow.repository(MessageRepository).update(replace(msg, body="never committed"))
    assert rows.get("messages", msg.id, msg.version + 1) is None

    # A committed write stays known, at its new version.
    async with db.uow() as uow:
        await uow.repository(MessageRepository).update(replace(msg, body="kept"))
        await uow.commit()
    known = rows.get("messages", msg.id, msg.version + 1)
    assert known is not None and known.body == "kept"
    assert await _read(db, msg.id) == known
