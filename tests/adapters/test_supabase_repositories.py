"""The repository contract on the Supabase adapter: the official client, the PostgREST
double in front of a fresh PostgreSQL database per test, schema from Alembic head."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest
from pydantic import ValidationError

from adapters.sqlalchemy.engine import sync_url
from adapters.supabase import SupabaseConnection, SupabaseUnitOfWork
from adapters.supabase.base import SupabaseRepository
from adapters.supabase.client import UNAVAILABLE_MESSAGE
from application.errors import ConcurrencyError, StorageUnavailable
from application.ports.conversation_repository import ConversationRepository
from application.ports.message_repository import MessageRepository
from application.ports.unit_of_work import UnitOfWork
from domain.errors import DuplicateMessage
from domain.message import DeliveryStatus, Direction
from tests.adapters.alembic_helpers import migrate
from tests.conftest import MakeSettings
from tests.contracts.entities import EntityContract, create_module_tables, registry_for
from tests.contracts.repositories import (
    T0,
    RepositoryContract,
    UowFactory,
    conversation,
    message,
)
from tests.fakes.postgrest import PostgrestDouble

pytestmark = pytest.mark.integration
REGISTRY = registry_for("supabase", SupabaseRepository)

# JWT-shaped like Supabase's keys; test-only values.
SERVICE_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2VydmljZS1zaWduYXR1cmU"
ANON_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.YW5vbi1zaWduYXR1cmU"


@pytest.fixture(scope="module")
def postgrest() -> Iterator[PostgrestDouble]:
    # One server for the module; each test points it at its own database.
    with PostgrestDouble(keys=(SERVICE_KEY, ANON_KEY)) as server:
        yield server


@pytest.fixture
def database(postgres_database: str, postgrest: PostgrestDouble) -> Iterator[str]:
    migrate(postgres_database)
    create_module_tables(sync_url(postgres_database), allow_supabase=True)
    postgrest.use_database(postgres_database)
    yield postgres_database
    # Close the double's connections before the database is dropped.
    postgrest.use_database(None)


@pytest.fixture
async def connection(
    database: str, postgrest: PostgrestDouble
) -> AsyncIterator[SupabaseConnection]:
    conn = SupabaseConnection(postgrest.base_url, SERVICE_KEY)
    yield conn
    await conn.aclose()


@pytest.fixture
def uow_factory(connection: SupabaseConnection) -> UowFactory:
    return lambda: SupabaseUnitOfWork(connection, REGISTRY)


class TestSupabaseRepositories(RepositoryContract):
    pass


class TestSupabaseEntities(EntityContract):
    pass


@pytest.fixture
async def other_process(
    database: str, postgrest: PostgrestDouble
) -> AsyncIterator[UowFactory]:
    """Units of a second process: their own client and their own unit lock."""
    conn = SupabaseConnection(postgrest.base_url, SERVICE_KEY)
    yield lambda: SupabaseUnitOfWork(conn)
    await conn.aclose()


async def test_stale_unit_from_another_process_applies_nothing(
    uow_factory: UowFactory, other_process: UowFactory
) -> None:
    conv = conversation()
    async with uow_factory() as uow:
        await uow.repository(ConversationRepository).create(conv)
        await uow.commit()
    mine = uow_factory()
    async with mine:
        current = await mine.repository(ConversationRepository).get_by_id(conv.id)
        assert current is not None
        extra = message(conv.id)
        assert await mine.repository(MessageRepository).add_if_new(extra)
        await mine.repository(ConversationRepository).update(current.touched(T0.replace(hour=13)))
        # Meanwhile another process commits its own change to the same conversation.
        async with other_process() as theirs:
            await theirs.repository(ConversationRepository).update(
                current.closed(T0.replace(hour=14))
            )
            await theirs.commit()
        with pytest.raises(ConcurrencyError):
            await mine.commit()
    async with uow_factory() as uow:
        stored = await uow.repository(ConversationRepository).get_by_id(conv.id)
        assert stored is not None and stored.status == "closed" and stored.version == 2
        assert await uow.repository(MessageRepository).get_by_id(extra.id) is None


async def test_cross_process_add_if_new_race_stores_one_row(
    uow_factory: UowFactory, other_process: UowFactory
) -> None:
    conv = conversation()
    async with uow_factory() as uow:
        await uow.repository(ConversationRepository).create(conv)
        await uow.commit()
    first, second = uow_factory(), other_process()
    async with first, second:
        # Both see the MessageSid free; the database decides at commit.
        assert await first.repository(MessageRepository).add_if_new(
            message(conv.id, provider_sid="SMx")
        )
        assert await second.repository(MessageRepository).add_if_new(
            message(conv.id, provider_sid="SMx")
        )
        await first.commit()
        with pytest.raises(ConcurrencyError):
            await second.commit()
    async with uow_factory() as uow:
        assert await uow.repository(MessageRepository).count({"provider_sid": "SMx"}) == 1


async def test_cross_process_status_race_never_moves_backwards(
    uow_factory: UowFactory, other_process: UowFactory
) -> None:
    conv = conversation()
    out = message(conv.id, direction=Direction.OUTBOUND, status=DeliveryStatus.SENT,
                  provider_sid="SMout")
    async with uow_factory() as uow:
        await uow.repository(ConversationRepository).create(conv)
        await uow.repository(MessageRepository).create(out)
        await uow.commit()
    delivered, read = DeliveryStatus.DELIVERED, DeliveryStatus.READ
    a, b = uow_factory(), other_process()
    async with a, b:
        assert await a.repository(MessageRepository).compare_and_set_status(
            out.id, read.predecessors(), read, T0
        )
        assert await b.repository(MessageRepository).compare_and_set_status(
            out.id, delivered.predecessors(), delivered, T0
        )
        await a.commit()
        with pytest.raises(ConcurrencyError):
            await b.commit()
    async with uow_factory() as uow:
        stored = await uow.repository(MessageRepository).get_by_id(out.id)
    assert stored is not None and stored.status is DeliveryStatus.READ


async def test_commit_time_duplicate_is_a_domain_error(
    uow_factory: UowFactory, other_process: UowFactory
) -> None:
    conv = conversation()
    async with uow_factory() as uow:
        await uow.repository(ConversationRepository).create(conv)
        await uow.commit()
    mine = uow_factory()
    async with mine:
        await mine.repository(MessageRepository).create(message(conv.id, provider_sid="SMdup"))
        async with other_process() as theirs:
            await theirs.repository(MessageRepository).create(
                message(conv.id, provider_sid="SMdup")
            )
            await theirs.commit()
        with pytest.raises(DuplicateMessage) as info:
            await mine.commit()
    assert info.value.provider_sid == "SMdup"


async def test_units_of_one_process_wait_for_each_other(uow_factory: UowFactory) -> None:
    conv = conversation()
    async with uow_factory() as uow:
        await uow.repository(ConversationRepository).create(conv)
        await uow.commit()
    order: list[str] = []
    first_open = asyncio.Event()

    async def first() -> None:
        async with uow_factory() as uow:
            first_open.set()
            current = await uow.repository(ConversationRepository).get_by_id(conv.id)
            assert current is not None
            await uow.repository(ConversationRepository).update(
                current.touched(T0.replace(hour=15))
            )
            await uow.commit()
            order.append("first")

    async def second() -> None:
        await first_open.wait()
        async with uow_factory() as uow:
            order.append("second")
            current = await uow.repository(ConversationRepository).get_by_id(conv.id)
            assert current is not None and current.version == 2

    await asyncio.gather(first(), second())
    assert order == ["first", "second"]


async def test_stopped_postgrest_is_storage_unavailable(database: str) -> None:
    server = PostgrestDouble(keys=(SERVICE_KEY,)).start()
    server.use_database(database)
    conn = SupabaseConnection(server.base_url, SERVICE_KEY)
    try:
        await conn.ping()
        server.stop()
        with pytest.raises(StorageUnavailable) as info:
            await conn.ping()
        assert str(info.value) == UNAVAILABLE_MESSAGE
        uow = SupabaseUnitOfWork(conn)
        with pytest.raises(StorageUnavailable):
            async with uow:
                await uow.repository(MessageRepository).count()
        with pytest.raises(StorageUnavailable):
            async with uow:
                await uow.repository(ConversationRepository).create(conversation())
                await uow.commit()
    finally:
        server.stop()
        await conn.aclose()


async def test_wrong_key_is_storage_unavailable_without_the_key(
    postgrest: PostgrestDouble, database: str
) -> None:
    secret = SERVICE_KEY[:-4] + "XXXX"
    conn = SupabaseConnection(postgrest.base_url, secret)
    try:
        with pytest.raises(StorageUnavailable) as info:
            await conn.ping()
        assert secret not in str(info.value) and secret not in repr(conn)
    finally:
        await conn.aclose()


async def test_missing_schema_is_a_storage_failure(
    postgres_database: str, postgrest: PostgrestDouble
) -> None:
    postgrest.use_database(postgres_database)  # no migrations: no tables, no functions
    conn = SupabaseConnection(postgrest.base_url, SERVICE_KEY)
    try:
        async with SupabaseUnitOfWork(conn) as uow:
            with pytest.raises(StorageUnavailable):
                await uow.repository(ConversationRepository).get_by_id("x")
            with pytest.raises(StorageUnavailable):
                await uow.repository(MessageRepository).awaiting_reply(T0)
    finally:
        await conn.aclose()


async def test_nothing_is_opened_before_first_use() -> None:
    # An unroutable URL: construction and closing must not touch it.
    conn = SupabaseConnection("http://127.0.0.1:9", SERVICE_KEY)
    SupabaseUnitOfWork(conn)
    await conn.aclose()


async def test_pending_rows_are_seen_by_the_unit_only(
    uow_factory: UowFactory, other_process: UowFactory
) -> None:
    conv = conversation()
    msg = message(conv.id)
    async with uow_factory() as uow:
        await uow.repository(ConversationRepository).create(conv)
        await uow.repository(MessageRepository).create(msg)
        assert await uow.repository(MessageRepository).count({"conversation_id": conv.id}) == 1
        assert await uow.repository(MessageRepository).latest_for_conversation(conv.id, 5) == [msg]
        assert await uow.repository(MessageRepository).awaiting_reply(
            T0.replace(year=2030)
        ) == [msg]
        edited = await uow.repository(MessageRepository).update(replace(msg, body="edited"))
        assert (await uow.repository(MessageRepository).find_by(body="edited")) == [edited]
        async with other_process() as theirs:
            assert await theirs.repository(MessageRepository).count() == 0
        await uow.repository(ConversationRepository).delete(conv.id)
        # The cascade, seen before commit.
        assert await uow.repository(MessageRepository).count() == 0
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.repository(ConversationRepository).count() == 0


async def test_container_binds_supabase_with_a_readiness_check(
    make_settings: MakeSettings, postgrest: PostgrestDouble, database: str
) -> None:
    from bootstrap.container import Resources, build_container

    settings = make_settings(database_backend="supabase", supabase_url=postgrest.base_url,
                             supabase_key="not-this-one", supabase_service_key=SERVICE_KEY)
    container = build_container(settings)
    resources = container[Resources]
    try:
        await resources.checks["database"]()  # the service key was preferred: it answers
        uow = container[UnitOfWork]
        assert isinstance(uow, SupabaseUnitOfWork)
        async with uow:
            assert await uow.repository(ConversationRepository).count() == 0
    finally:
        await resources.aclose()
    postgrest.use_database(None)  # PostgREST up, its database gone: not ready
    down = build_container(settings)[Resources]
    try:
        with pytest.raises(StorageUnavailable):
            await down.checks["database"]()
    finally:
        await down.aclose()


def test_supabase_backend_needs_a_url_and_a_key(make_settings: MakeSettings) -> None:
    with pytest.raises(ValidationError, match="SUPABASE_URL"):
        make_settings(database_backend="supabase", supabase_key=SERVICE_KEY)
    with pytest.raises(ValidationError, match="SUPABASE_SERVICE_KEY"):
        make_settings(database_backend="supabase", supabase_url="http://127.0.0.1:1")


@pytest.mark.parametrize("table", ["alembic_version", "pg_catalog.pg_class", 'messages"; --', None])
async def test_the_commit_function_writes_only_allow_listed_tables(
    connection: SupabaseConnection, table: str | None
) -> None:
    from postgrest import APIError

    client = await connection.postgrest()
    op = {"kind": "delete", "table": table, "id": "x", "version": 1}
    with pytest.raises(APIError) as refused:
        await client.rpc("wta_apply_unit", {"ops": [op]}).execute()
    assert refused.value.code == "22023"
    assert "wta_unit_tables" in (refused.value.message or "")
