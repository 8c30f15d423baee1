"""Supabase persistence adapter: the official client talking PostgREST.

Build one ``SupabaseConnection`` per process (it creates the client on first use) and a
``SupabaseUnitOfWork`` per task. The schema comes from the Alembic migrations, run against
the Postgres behind Supabase; ``0002_supabase_rpc`` adds the functions this adapter calls.
"""

from adapters.supabase.client import SupabaseConnection
from adapters.supabase.repositories import (
    SupabaseConversationRepository,
    SupabaseMessageRepository,
)
from adapters.supabase.unit_of_work import SupabaseUnitOfWork

__all__ = [
    "SupabaseConnection",
    "SupabaseConversationRepository",
    "SupabaseMessageRepository",
    "SupabaseUnitOfWork",
]
