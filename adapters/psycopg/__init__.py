"""Raw SQL persistence over psycopg2: statements composed with ``psycopg2.sql``, a bounded
connection pool, and every blocking call run on a worker thread."""

from adapters.psycopg.pool import ConnectionPool
from adapters.psycopg.repositories import PsycopgConversationRepository, PsycopgMessageRepository
from adapters.psycopg.unit_of_work import PsycopgUnitOfWork

__all__ = [
    "ConnectionPool",
    "PsycopgConversationRepository",
    "PsycopgMessageRepository",
    "PsycopgUnitOfWork",
]
