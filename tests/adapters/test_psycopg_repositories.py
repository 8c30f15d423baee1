"""The repository contract on PostgreSQL through the raw psycopg2 adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.psycopg.pool import ConnectionPool
from adapters.psycopg.unit_of_work import PsycopgUnitOfWork
from tests.adapters.alembic_helpers import migrate
from tests.contracts.repositories import RepositoryContract, UowFactory

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(postgres_database: str) -> AsyncIterator[ConnectionPool]:
    migrate(postgres_database)
    pool = ConnectionPool(postgres_database, min_size=1, max_size=12, timeout=10)
    yield pool
    await pool.close()


@pytest.fixture
def uow_factory(pool: ConnectionPool) -> UowFactory:
    return lambda: PsycopgUnitOfWork(pool)


class TestPsycopgRepositories(RepositoryContract):
    pass
