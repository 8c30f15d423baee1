"""The repository contract on PostgreSQL through SQLAlchemy (asyncpg), schema from Alembic."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.base import SqlaRepository
from adapters.sqlalchemy.engine import create_engine_for, make_session_factory, ping, sync_url
from adapters.sqlalchemy.unit_of_work import SqlaUnitOfWork
from application.errors import StorageUnavailable
from application.ports.conversation_repository import ConversationRepository
from tests.adapters.alembic_helpers import migrate
from tests.contracts.entities import EntityContract, create_module_tables, registry_for
from tests.contracts.repositories import RepositoryContract, UowFactory

pytestmark = pytest.mark.integration
REGISTRY = registry_for("sqlalchemy", SqlaRepository)


@pytest.fixture
async def engine(postgres_database: str) -> AsyncIterator[AsyncEngine]:
    migrate(postgres_database)
    create_module_tables(sync_url(postgres_database))
    engine = create_engine_for(postgres_database, pool_size=12)
    yield engine
    await engine.dispose()


@pytest.fixture
def uow_factory(engine: AsyncEngine) -> UowFactory:
    sessions = make_session_factory(engine)
    return lambda: SqlaUnitOfWork(sessions, REGISTRY)


class TestSqlaPostgresRepositories(RepositoryContract):
    pass


class TestSqlaPostgresEntities(EntityContract):
    pass


async def test_engine_uses_asyncpg_and_answers_ping(engine: AsyncEngine) -> None:
    assert engine.dialect.driver == "asyncpg"
    await ping(engine)


async def test_missing_schema_is_a_storage_failure(postgres_database: str) -> None:
    engine = create_engine_for(postgres_database)
    try:
        async with SqlaUnitOfWork(make_session_factory(engine)) as uow:
            with pytest.raises(StorageUnavailable):
                await uow.repository(ConversationRepository).get_by_id("x")
    finally:
        await engine.dispose()
