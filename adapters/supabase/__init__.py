"""Supabase persistence adapter: the official client talking PostgREST.

Build one ``SupabaseConnection`` per process (it creates the client on first use) and a
``SupabaseUnitOfWork`` per task. The schema comes from the Alembic migrations, run against
the Postgres behind Supabase; ``0002_supabase_rpc`` and ``0003_generic_apply_unit`` add
the functions this adapter calls (the commit writes only the tables ``wta_unit_tables()``
allows).
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
