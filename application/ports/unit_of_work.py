from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository


class UnitOfWork(Protocol):
    """A transaction over the repositories.

    ``async with uow:`` opens it; leaving the block without ``commit()`` (or by an
    exception) rolls everything back, so nothing of a failed unit is visible afterwards.
    A unit of work object may be entered again after it closed.
    """

    conversations: ConversationRepository
    messages: MessageRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...
