"""In-memory unit of work: copy the committed tables on enter, publish them on commit."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from adapters.in_memory.repositories import (
    InMemoryConversationRepository,
    InMemoryMessageRepository,
    InMemoryStore,
    Tables,
)
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository


class InMemoryUnitOfWork:
    """Same contract as the SQL unit of work.

    Units are serialized by the store's lock for their whole duration, so a unit sees no
    concurrent change and racing inserts are decided one after the other, as under
    SQLite's ``BEGIN IMMEDIATE``. Like the SQL one it may be entered again once closed,
    but a task must not open a second unit on the same store while one is open (it would
    wait for itself).
    """

    # Typed as the ports: Protocol attributes are invariant, and this checks conformance.
    conversations: ConversationRepository
    messages: MessageRepository

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._work: Tables | None = None
        self.conversations = InMemoryConversationRepository(self._tables)
        self.messages = InMemoryMessageRepository(self._tables)

    async def __aenter__(self) -> Self:
        if self._work is not None:
            raise RuntimeError("this unit of work is already open; use one instance per task")
        await self._store.lock.acquire()
        self._work = self._store.committed.copy()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Whatever was not committed is simply dropped with the working copy.
        if self._work is None:
            return
        self._work = None
        self._store.lock.release()

    async def commit(self) -> None:
        work = self._tables()
        self._store.committed = work.copy()

    async def rollback(self) -> None:
        self._tables()
        self._work = self._store.committed.copy()

    def _tables(self) -> Tables:
        if self._work is None:
            raise RuntimeError("the unit of work is not open: use `async with uow:`")
        return self._work
