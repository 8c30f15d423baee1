"""What each recent row was when this process last read or wrote it, so that an update
SETs only the columns that changed since.

A full-row UPDATE makes the database rewrite every index that names a SET column, changed
or not: on SQLite, with the eight indexes of ``messages``, an update and its commit cost
136 µs against 84 µs for the columns a status change touches, and a conversation "touch"
that changes nothing but its version rewrote all of its own.

Entries are keyed by (table, id, version). Every writer of a versioned row raises its
version, so a row's content at one version is fixed; an update at version v applies only
where the row is still at v (its WHERE), so the columns it leaves alone hold what the
entry says. Each single-row read and each write replaces the entry for what it saw, so an
entity a caller holds from a committed unit matches its entry (lists, such as a reply's
history, are not remembered: they are seldom updated and would flush the map). An entry
a unit wrote and then did not commit describes a version that may never exist: the unit
of work drops those.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Engine

CAPACITY = 4096  # rows per database; a reply's rows are reused within milliseconds

Key = tuple[str, str, int]


class KnownRows:
    """A bounded LRU of (table, id, version) -> the entity as read or written."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._rows: OrderedDict[Key, Any] = OrderedDict()

    def remember(self, table: str, entity: Any) -> Key:
        key = (table, entity.id, entity.version)
        self._rows[key] = entity
        self._rows.move_to_end(key)
        if len(self._rows) > self._capacity:
            self._rows.popitem(last=False)
        return key

    def get(self, table: str, entity_id: str, version: int) -> Any | None:
        return self._rows.get((table, entity_id, version))

    def forget(self, keys: list[Key]) -> None:
        for key in keys:
            self._rows.pop(key, None)


_BY_ENGINE: WeakKeyDictionary[Engine, KnownRows] = WeakKeyDictionary()


def known_rows(engine: Engine) -> KnownRows:
    """The rows known for ``engine``'s database (one map per engine: tests open many)."""
    found = _BY_ENGINE.get(engine)
    if found is None:
        found = _BY_ENGINE[engine] = KnownRows()
    return found

