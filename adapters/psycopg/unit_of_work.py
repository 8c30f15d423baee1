"""The unit of work: one pooled connection and at most one transaction per ``async with``."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from psycopg2 import sql

from adapters.psycopg.pool import ConnectionPool
from adapters.psycopg.repositories import PsycopgConversationRepository, PsycopgMessageRepository
from adapters.psycopg.session import PgSession
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository


class PsycopgUnitOfWork:
    """``async with uow:`` borrows a connection on its first statement; leaving without
    ``commit()`` rolls back and returns it. Re-enterable once closed, one task at a time."""

    # Typed as the ports: Protocol attributes are invariant, and this checks conformance.
    conversations: ConversationRepository
    messages: MessageRepository

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._session: PgSession | None = None

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this unit of work is already open; use one instance per task")
        self._session = PgSession(self._pool)
        self.conversations = PsycopgConversationRepository(self._session)
        self.messages = PsycopgMessageRepository(self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def commit(self) -> None:
        await self._open_session().commit()

    async def rollback(self) -> None:
        await self._open_session().rollback()

    def _open_session(self) -> PgSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use `async with uow:`")
        return self._session


async def ping(pool: ConnectionPool) -> None:
    """``SELECT 1`` on a pooled connection; raises ``StorageUnavailable`` when it cannot."""
    session = PgSession(pool)
    try:
        await session.fetch_one(sql.SQL("SELECT 1"))
    finally:
        await session.close()
