"""A real PostgreSQL going away and coming back, behind a TCP proxy, through the whole app.

Runs on the raw ``postgres`` backend and on ``sqlalchemy`` (asyncpg): start-up with the
database down, the connection lost in the middle of a webhook, recovery without a
restart, and a bounded wait when the pool is exhausted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from lagom import Container

from application.errors import StorageUnavailable
from application.ports.conversation_repository import ConversationRepository
from application.ports.job_queue import JobConsumer
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from bootstrap.app import create_app
from bootstrap.container import build_container
from bootstrap.settings import Settings
from domain.message import Message
from tests.adapters.alembic_helpers import migrate
from tests.adapters.test_webhooks_api import BASE, INBOUND, Api
from tests.conftest import MakeSettings
from tests.fakes.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

BACKENDS = ["postgres", "sqlalchemy"]


def through(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture
def proxy(postgres_database: str) -> Iterator[TcpProxy]:
    migrate(postgres_database)
    target = urlsplit(postgres_database)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        yield proxy


@pytest.fixture(params=BACKENDS)
def settings(
    request: pytest.FixtureRequest, make_settings: MakeSettings, postgres_database: str,
    proxy: TcpProxy,
) -> Settings:
    return make_settings(
        database_backend=request.param,
        database_url=through(postgres_database, proxy.port),
        database_pool_max_conn=3,
        database_pool_timeout_seconds=2,
    )


class _CutAfterInsert:
    """Wraps a unit of work: once the inbound message row is written, the database goes."""

    def __init__(self, inner: UnitOfWork, proxy: TcpProxy) -> None:
        self._inner = inner
        self._proxy = proxy

    def __getattr__(self, name: str) -> Any:
        # Use cases reach the repositories through the object they were given.
        return getattr(self._inner, name)

    async def __aenter__(self) -> Any:
        await self._inner.__aenter__()
        real = self._inner.repository(MessageRepository).add_if_new
        proxy = self._proxy

        async def add_if_new(message: Message) -> bool:
            inserted = await real(message)
            proxy.cut()
            return inserted

        self._inner.repository(MessageRepository).add_if_new = add_if_new  # type: ignore[method-assign]
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self._inner.__aexit__(*args)


@pytest.fixture
async def start_app(settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    stack: list[Any] = []

    async def start(hook: Callable[[Container], Container] | None = None) -> Api:
        container = build_container(settings)
        if hook:
            container = hook(container)
        app = create_app(settings, container, embedded_worker=False)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url=BASE
        )
        stack.append((client, lifespan))
        return Api(client, settings, container)

    yield start
    for client, lifespan in stack:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def queued(api: Api) -> int:
    queue: Any = api.container[JobConsumer]
    return int(await queue.depth())


async def test_down_at_start_reports_unready_then_recovers(
    start_app: Callable[..., Any], proxy: TcpProxy
) -> None:
    proxy.cut()
    api: Api = await start_app()
    ready = await api.client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("unavailable")
    assert (await api.client.get("/health/live")).status_code == 200
    refused = await api.post(INBOUND, api.params())
    assert refused.status_code == 503
    assert refused.json()["code"] == "STORAGE_UNAVAILABLE"
    assert await queued(api) == 0

    proxy.restore()
    assert (await api.client.get("/health/ready")).status_code == 200
    assert (await api.post(INBOUND, api.params())).status_code == 200
    assert await api.counts() == (1, 1)


async def test_lost_mid_request_is_503_stores_nothing_and_recovers(
    start_app: Callable[..., Any], proxy: TcpProxy
) -> None:
    def cut_after_insert(container: Container) -> Container:
        child = container.clone()
        child[UnitOfWork] = lambda: _CutAfterInsert(container[UnitOfWork], proxy)  # type: ignore[assignment]
        return child

    api: Api = await start_app(cut_after_insert)
    sid = "SM" + "7" * 32
    response = await api.post(INBOUND, api.params(sid=sid))
    assert response.status_code == 503
    assert response.json()["code"] == "STORAGE_UNAVAILABLE"
    assert "postgres" not in response.text and str(proxy.port) not in response.text

    proxy.restore()
    plain: UnitOfWork = api.container.clone()[UnitOfWork]
    async with plain as uow:
        # The message row was written inside the unit that died: it must not be there.
        assert await uow.repository(MessageRepository).count() == 0
        assert await uow.repository(ConversationRepository).count() == 0
    assert await queued(api) == 0


async def test_recovers_without_restart_after_an_outage(
    start_app: Callable[..., Any], proxy: TcpProxy
) -> None:
    api: Api = await start_app()
    assert (await api.post(INBOUND, api.params(sid="SM" + "1" * 32))).status_code == 200
    proxy.cut()  # the pooled connections die with it
    down = await api.post(INBOUND, api.params(sid="SM" + "2" * 32))
    assert down.status_code == 503
    assert (await api.client.get("/health/ready")).status_code == 503
    proxy.restore()
    again = await api.post(INBOUND, api.params(sid="SM" + "2" * 32))
    assert again.status_code == 200
    assert await api.counts() == (2, 2)


async def test_exhausted_pool_fails_after_a_bounded_wait(settings: Settings) -> None:
    container = build_container(settings)
    holders = [container[UnitOfWork] for _ in range(settings.database_pool_max_conn)]
    try:
        for uow in holders:
            await uow.__aenter__()
            await uow.repository(MessageRepository).count()  # each now holds a connection
        async with container[UnitOfWork] as starved:
            with pytest.raises(StorageUnavailable):
                # Generous outer bound: only proves it gives up instead of hanging.
                await asyncio.wait_for(starved.repository(MessageRepository).count(), 30)
    finally:
        for uow in holders:
            await uow.__aexit__(None, None, None)
    async with container[UnitOfWork] as uow:
        # The connections came back to the pool.
        assert await uow.repository(MessageRepository).count() == 0
    from bootstrap.container import Resources

    await container[Resources].aclose()
