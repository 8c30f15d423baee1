"""The repository contract on the in-memory fakes."""

from __future__ import annotations

import pytest

from adapters.in_memory.repositories import InMemoryRepository, InMemoryStore
from adapters.in_memory.unit_of_work import InMemoryUnitOfWork
from application.ports.conversation_repository import ConversationRepository
from tests.contracts.entities import EntityContract, registry_for
from tests.contracts.repositories import RepositoryContract, UowFactory, conversation

REGISTRY = registry_for("memory", InMemoryRepository)


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def uow_factory(store: InMemoryStore) -> UowFactory:
    return lambda: InMemoryUnitOfWork(store, REGISTRY)


class TestInMemoryRepositories(RepositoryContract):
    pass


class TestInMemoryEntities(EntityContract):
    pass


async def test_a_unit_cannot_be_open_twice_at_once(store: InMemoryStore) -> None:
    uow = InMemoryUnitOfWork(store)
    async with uow:
        with pytest.raises(RuntimeError):
            await uow.__aenter__()
    assert not store.lock.locked()


async def test_repositories_refuse_use_outside_a_unit(store: InMemoryStore) -> None:
    uow = InMemoryUnitOfWork(store)
    with pytest.raises(RuntimeError):
        await uow.repository(ConversationRepository).create(conversation())
    with pytest.raises(RuntimeError):
        await uow.commit()


async def test_failed_unit_releases_the_lock(store: InMemoryStore) -> None:
    with pytest.raises(KeyError):
        async with InMemoryUnitOfWork(store):
            raise KeyError("boom")
    assert not store.lock.locked()
    assert store.committed.table("conversations") == {}
