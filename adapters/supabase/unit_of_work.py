"""The unit of work over a stateless HTTP API.

PostgREST runs each request in its own transaction, so a unit cannot hold one open.
Instead:

- Reads go straight to PostgREST; the unit's own pending rows are merged into them.
- Writes answer at once (``add_if_new``, ``compare_and_set_status``, a stale ``update``)
  from the current state plus the pending rows, and are queued. ``commit()`` sends the
  whole queue to ``wta_apply_unit`` through ``rpc()``: one transaction that re-checks
  every condition in SQL (version, expected status, insert-or-nothing), on the tables
  the database's allow-list names only. If any no longer holds, nothing is applied and
  ``commit()`` raises ``ConcurrencyError`` (or the entity's declared duplicate error /
  ``NotFound`` for a key taken or a row gone meanwhile).
- A unit that raises or leaves without ``commit()`` never sent anything.
- Units of one process are serialized (``SupabaseConnection.unit_lock``), so their
  immediate answers are exact; across processes the commit-time checks decide.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self, TypeVar, cast

from postgrest import APIError

from adapters.supabase.base import SupabaseRepository
from adapters.supabase.client import UNAVAILABLE_MESSAGE, SupabaseConnection
from adapters.supabase.repositories import BUILT_IN, RepositoryClass
from adapters.supabase.working_set import WorkingSet
from application.entities import EntityRegistry, EntitySpec
from application.errors import ConcurrencyError, NotFound, StorageUnavailable
from application.ports.repository import Repository

R = TypeVar("R")
E = TypeVar("E")

APPLY_UNIT = "wta_apply_unit"


class SupabaseUnitOfWork:
    """Same contract as the SQL unit of work; see the module docstring for how.

    May be entered again once closed, but not by two tasks at once, and a task must not
    open a second unit on the same connection while one is open (it would wait for
    itself). ``registry``: the entities it serves (default: the kernel's built-in ones);
    their tables must be in the database's allow-list (``wta_unit_tables()``).
    """

    def __init__(
        self, connection: SupabaseConnection,
        registry: EntityRegistry[RepositoryClass] | None = None,
    ) -> None:
        self._connection = connection
        self._registry = BUILT_IN if registry is None else registry
        self._work: WorkingSet | None = None
        self._repositories: dict[str, SupabaseRepository[Any]] = {}

    def repository(self, port: type[R]) -> R:
        return cast(R, self._bound(*self._registry.for_port(port)))

    def repository_for(self, entity: type[E]) -> Repository[E]:
        return cast(Repository[E], self._bound(*self._registry.for_entity(entity)))

    def _bound(self, spec: EntitySpec[Any], cls: RepositoryClass) -> SupabaseRepository[Any]:
        found = self._repositories.get(spec.table)
        if found is None:
            found = cls(self._connection, self._working_set, spec)
            self._repositories[spec.table] = found
        return found

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
            raise self._commit_error(error, ops) from error
        except Exception as error:
            # Transport failure: the commit may or may not have happened.
            raise StorageUnavailable(UNAVAILABLE_MESSAGE) from error

    async def rollback(self) -> None:
        self._working_set().clear()

    def _commit_error(self, error: APIError, ops: list[dict[str, Any]]) -> Exception:
        op = _failed_op(error, ops)
        if error.code == "PT409":
            return ConcurrencyError("a concurrent writer changed rows this unit relied on; "
                                    "nothing of it was applied")
        if error.code == "23505" and op is not None:
            found = self._registry.for_table(str(op["table"]))
            row = op.get("row") or {"id": op.get("id")}
            if found is not None:
                return found[0].conflict(error.message or "", row)
            return ConcurrencyError(f"{op['table']} {op.get('id')} conflicts with a stored row")
        if error.code == "23503" and op is not None:
            return NotFound(f"{op['table']} {op.get('id')} refers to a row that is gone")
        return StorageUnavailable(UNAVAILABLE_MESSAGE)

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
