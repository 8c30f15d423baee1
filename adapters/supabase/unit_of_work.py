"""The unit of work over a stateless HTTP API.

PostgREST runs each request in its own transaction, so a unit cannot hold one open.
Instead:

- Reads go straight to PostgREST; the unit's own pending rows are merged into them.
- Writes answer at once (``add_if_new``, ``compare_and_set_status``, a stale ``update``)
  from the current state plus the pending rows, and are queued. ``commit()`` sends the
  whole queue to ``wta_apply_unit`` through ``rpc()``: one transaction that re-checks
  every condition in SQL (version, expected status, insert-or-nothing). If any no longer
  holds, nothing is applied and ``commit()`` raises ``ConcurrencyError`` (or
  ``DuplicateMessage``/``NotFound`` for a key taken or a row gone meanwhile).
- A unit that raises or leaves without ``commit()`` never sent anything.
- Units of one process are serialized (``SupabaseConnection.unit_lock``), so their
  immediate answers are exact; across processes the commit-time checks decide.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from postgrest import APIError

from adapters.supabase.client import UNAVAILABLE_MESSAGE, SupabaseConnection
from adapters.supabase.repositories import (
    SupabaseConversationRepository,
    SupabaseMessageRepository,
)
from adapters.supabase.working_set import WorkingSet
from application.errors import ConcurrencyError, NotFound, StorageUnavailable
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from domain.errors import DuplicateMessage

APPLY_UNIT = "wta_apply_unit"


class SupabaseUnitOfWork:
    """Same contract as the SQL unit of work; see the module docstring for how.

    May be entered again once closed, but not by two tasks at once, and a task must not
    open a second unit on the same connection while one is open (it would wait for
    itself).
    """

    conversations: ConversationRepository
    messages: MessageRepository

    def __init__(self, connection: SupabaseConnection) -> None:
        self._connection = connection
        self._work: WorkingSet | None = None
        self.conversations = SupabaseConversationRepository(connection, self._working_set)
        self.messages = SupabaseMessageRepository(connection, self._working_set)

    async def __aenter__(self) -> Self:
        if self._work is not None:
            raise RuntimeError("this unit of work is already open; use one instance per task")
        await self._connection.unit_lock.acquire()
        self._work = WorkingSet()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Nothing was sent for uncommitted writes: dropping them is the rollback.
        if self._work is None:
            return
        self._work = None
        self._connection.unit_lock.release()

    async def commit(self) -> None:
        work = self._working_set()
        if not work.ops:
            return
        ops = list(work.ops)
        # Whatever happens, this transaction is over: later writes start a new one.
        work.clear()
        client = await self._connection.postgrest()
        try:
            await client.rpc(APPLY_UNIT, {"ops": ops}).execute()  # type: ignore[dict-item]
        except APIError as error:
            raise _commit_error(error, ops) from error
        except Exception as error:
            # Transport failure: the commit may or may not have happened.
            raise StorageUnavailable(UNAVAILABLE_MESSAGE) from error

    async def rollback(self) -> None:
        self._working_set().clear()

    def _working_set(self) -> WorkingSet:
        if self._work is None:
            raise RuntimeError("the unit of work is not open: use `async with uow:`")
        return self._work


def _failed_op(error: APIError, ops: list[dict[str, Any]]) -> dict[str, Any] | None:
    hint = error.hint or ""
    if hint.startswith("wta_op="):
        index = hint[len("wta_op="):]
        if index.isdigit() and int(index) < len(ops):
            return ops[int(index)]
    return None


def _commit_error(error: APIError, ops: list[dict[str, Any]]) -> Exception:
    op = _failed_op(error, ops)
    if error.code == "PT409":
        return ConcurrencyError("a concurrent writer changed rows this unit relied on; "
                                "nothing of it was applied")
    if error.code == "23505" and op is not None:
        row = op.get("row") or {}
        if op["table"] == "messages":
            key = row.get("provider_sid") or row.get("reply_to_id") or row.get("id")
            return DuplicateMessage(str(key))
        return ConcurrencyError(f"conversation {row.get('id')} conflicts with a stored one")
    if error.code == "23503" and op is not None:
        return NotFound(f"{op['table']} {op.get('id')} refers to a row that is gone")
    return StorageUnavailable(UNAVAILABLE_MESSAGE)
