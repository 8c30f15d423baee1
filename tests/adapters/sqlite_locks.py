"""Another process's hold on a SQLite file's write lock, for tests of what waits for it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def write_lock_held(path: str) -> Iterator[None]:
    """Another connection holds ``path``'s write lock (BEGIN IMMEDIATE) inside the block."""
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        yield
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()
