"""The unit of work: one AsyncSession and its transaction per ``async with`` block."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from adapters.sqlalchemy.engine import translate_errors
from adapters.sqlalchemy.repositories import SqlaConversationRepository, SqlaMessageRepository
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository


class SqlaUnitOfWork:
    """``async with uow:`` opens a session; leaving it without ``commit()`` rolls back.

    The object can be entered again once closed (use cases run several short units in a
    row), but not by two tasks at once: give each concurrent task its own instance.
    """

    # Typed as the ports: Protocol attributes are invariant, and this checks conformance.
    conversations: ConversationRepository
    messages: MessageRepository

    def __init__(self, session_factory: Callable[[], Any]) -> None:
        # An async_sessionmaker, or a LoopSessionFactory (SQLite files on the loop thread).
        self._session_factory = session_factory
        self._session: Any = None

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this unit of work is already open; use one instance per task")
        # The transaction begins with the first statement (SQLAlchemy's autobegin), and
        # again after a commit or rollback inside the block.
        self._session = self._session_factory()
        self.conversations = SqlaConversationRepository(self._session)
        self.messages = SqlaMessageRepository(self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            # close() rolls back whatever was not committed and returns the connection.
            with translate_errors():
                await session.close()
        except Exception:
            if exc is None:
                raise
            # Keep the original error: a failed cleanup after a failure is the lesser news.

    async def commit(self) -> None:
        with translate_errors():
            await self._open_session().commit()

    async def rollback(self) -> None:
        with translate_errors():
            await self._open_session().rollback()

    def _open_session(self) -> Any:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use `async with uow:`")
        return self._session
