"""SQLite job queue: the embedded, durable default queue backend (stdlib sqlite3 only)."""

from adapters.sqlite_queue.job_queue import SqliteJobQueue

__all__ = ["SqliteJobQueue"]
