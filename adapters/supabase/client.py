"""The Supabase client, created lazily, and the translation of its errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from postgrest import APIError, AsyncPostgrestClient
from supabase import AsyncClientOptions, AsyncSupabaseException, acreate_client

from application.errors import StorageUnavailable

# Generic on purpose: server messages may name hosts; nothing here may carry the key.
UNAVAILABLE_MESSAGE = "the database is unavailable"


@contextmanager
def translate_errors() -> Iterator[None]:
    """Every transport or PostgREST failure becomes ``StorageUnavailable``."""
    try:
        yield
    except (APIError, httpx.HTTPError, AsyncSupabaseException) as error:
        raise StorageUnavailable(UNAVAILABLE_MESSAGE) from error


class SupabaseConnection:
    """One Supabase client per process, created on first use; opens nothing before.

    ``unit_lock`` serializes this process's units of work (see ``SupabaseUnitOfWork``).
    Use the service key for a backend: it is not subject to row-level security.
    """

    def __init__(
        self, url: str, key: str, *, schema: str = "public", timeout_seconds: float = 10.0
    ) -> None:
        self._url = url
        self._key = key
        self._schema = schema
        self._timeout = timeout_seconds
        self._http: httpx.AsyncClient | None = None
        self._postgrest: AsyncPostgrestClient | None = None
        self._creating = asyncio.Lock()
        self.unit_lock = asyncio.Lock()

    def __repr__(self) -> str:  # never the key
        return f"SupabaseConnection(url={self._url!r}, schema={self._schema!r})"

    async def postgrest(self) -> AsyncPostgrestClient:
        if self._postgrest is not None:
            return self._postgrest
        async with self._creating:
            if self._postgrest is None:
                http = httpx.AsyncClient(timeout=httpx.Timeout(self._timeout, connect=5.0))
                options = AsyncClientOptions(
                    schema=self._schema,
                    httpx_client=http,
                    # Retries (with sleeps of seconds) belong to the caller: Twilio retries
                    # a webhook, the worker retries a job.
                    postgrest_client_retry=False,
                    auto_refresh_token=False,
                    persist_session=False,
                )
                try:
                    with translate_errors():
                        client = await acreate_client(self._url, self._key, options)
                except StorageUnavailable:
                    await http.aclose()
                    raise
                self._http, self._postgrest = http, client.postgrest
        return self._postgrest

    async def execute(self, request: Any) -> Any:
        """``await request.execute()`` with errors translated; returns the APIResponse."""
        with translate_errors():
            return await request.execute()

    async def ping(self) -> None:
        """A one-row read: raises ``StorageUnavailable`` unless PostgREST and the schema
        answer."""
        client = await self.postgrest()
        await self.execute(client.table("conversations").select("id").limit(1))

    async def aclose(self) -> None:
        http, self._http, self._postgrest = self._http, None, None
        if http is not None:
            await http.aclose()
