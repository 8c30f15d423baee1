"""The repository contract on PostgreSQL through the raw psycopg2 adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.psycopg.base import PsycopgRepository
from adapters.psycopg.pool import ConnectionPool
from adapters.psycopg.unit_of_work import PsycopgUnitOfWork
from adapters.sqlalchemy.engine import sync_url
from tests.adapters.alembic_helpers import migrate
from tests.contracts.entities import EntityContract, create_module_tables, registry_for
from tests.contracts.repositories import RepositoryContract, UowFactory

pytestmark = pytest.mark.integration
REGISTRY = registry_for("postgres", PsycopgRepository)


@pytest.fixture
async def pool(postgres_database: str) -> AsyncIterator[ConnectionPool]:
    migrate(postgres_database)
    create_module_tables(sync_url(postgres_database))
    pool = ConnectionPool(postgres_database, min_size=1, max_size=12, timeout=10)
    yield pool
    await pool.close()


@pytest.fixture
def uow_factory(pool: ConnectionPool) -> UowFactory:
    return lambda: PsycopgUnitOfWork(pool, REGISTRY)


class TestPsycopgRepositories(RepositoryContract):
    pass


class TestPsycopgEntities(EntityContract):
    pass


async def test_page_statements_are_kept_per_shape_up_to_the_bound(
    uow_factory: UowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One kept statement per filter shape, whatever the values; past the bound a new
    shape still answers, composed each time instead of kept."""
    from adapters.psycopg import base
    from application.ports.conversation_repository import ConversationRepository
    from application.ports.repository import Condition

    def query(contact: str, column: str) -> list[Condition]:
        return [Condition("contact", "eq", contact), Condition(column, "is_null", True)]

    kept: dict[str, object] = {}
    monkeypatch.setattr(base, "_STATEMENTS", kept)
    async with uow_factory() as uow:
        conversations = uow.repository(ConversationRepository)
        assert (await conversations.query(query("a", "holder"))).items == []
        assert (await conversations.query(query("b", "holder"))).items == []
        assert list(kept) == ["conversations.page[contact eq,holder null]"]
        monkeypatch.setattr(base, "_MAX_STATEMENTS", 1)
        assert (await conversations.query(query("c", "closed_reason"))).items == []
        assert list(kept) == ["conversations.page[contact eq,holder null]"]
