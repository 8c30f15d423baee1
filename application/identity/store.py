"""Owners, numbers and plans read and changed through the kernel's unit of work.

Every change bumps the directory revision in the same unit, so every process's cached
directory sees it on its next check (``StoredOwnerDirectory``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from application.errors import ConcurrencyError
from application.identity.cipher import TokenCipher
from application.ports.clock import Clock
from application.ports.repository import Repository
from application.ports.unit_of_work import UnitOfWork
from domain.identity.owner import (
    DirectoryRevision,
    DuplicateOwner,
    NumberTaken,
    Owner,
    OwnerNumber,
    Plan,
    UnknownOwner,
    UnknownPlan,
    check_account_sid,
    check_number,
    check_owner_id,
)

T = TypeVar("T")
REVISION_ID = "directory"
UowFactory = Callable[[], UnitOfWork]


async def every(repo: Repository[T], **filters: object) -> list[T]:
    """Every row (matching ``filters``), page after page."""
    found: list[T] = []
    cursor: str | None = None
    while True:
        page = await repo.list(limit=500, cursor=cursor, filters=filters or None)
        found += page.items
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def bump_revision(uow: UnitOfWork) -> None:
    repo = uow.repository_for(DirectoryRevision)
    current = await repo.get_by_id(REVISION_ID)
    if current is None:
        await repo.create(DirectoryRevision(id=REVISION_ID, revision=1))
    else:
        await repo.update(replace(current, revision=current.revision + 1))


async def read_revision(uow: UnitOfWork) -> int:
    current = await uow.repository_for(DirectoryRevision).get_by_id(REVISION_ID)
    return current.revision if current else 0


@dataclass(frozen=True, slots=True)
class OwnerView:
    """What an operator or the admin API is shown: never the token."""

    id: str
    name: str
    account_sid: str
    enabled: bool
    numbers: tuple[str, ...]
    plan_id: str | None
    answers: bool
    system_prompt: str | None
    model: str | None
    reply_language: str | None
    temperature: float | None
    fallback_message: str | None
    closing_message: str | None
    vision: bool | None
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "account_sid": self.account_sid,
                "enabled": self.enabled, "numbers": list(self.numbers),
                "plan_id": self.plan_id, "answers": self.answers,
                "system_prompt": self.system_prompt, "model": self.model,
                "reply_language": self.reply_language, "temperature": self.temperature,
                "fallback_message": self.fallback_message,
                "closing_message": self.closing_message, "vision": self.vision,
                "created_at": self.created_at.isoformat()}


OWNER_FIELDS = frozenset({"name", "plan_id", "answers", "system_prompt", "model",
                          "reply_language", "temperature", "fallback_message",
                          "closing_message", "vision", "enabled"})


class OwnerStore:
    def __init__(self, uow: UowFactory, cipher: TokenCipher, clock: Clock,
                 on_change: Callable[[], None] | None = None) -> None:
        """``on_change``: told after each committed change (this process's cache)."""
        self._uow = uow
        self._cipher = cipher
        self._clock = clock
        self.on_change = on_change

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def add(self, *, name: str, account_sid: str, auth_token: str,
                  numbers: Sequence[str] = (), plan_id: str | None = None,
                  owner_id: str | None = None, **settings: Any) -> OwnerView:
        """``owner_id`` defaults to the account SID (one owner per account)."""
        check_account_sid(account_sid)
        owner = Owner(id=check_owner_id(owner_id or account_sid), name=name,
                      account_sid=account_sid, sealed_token=self._cipher.seal(auth_token),
                      enabled=True, created_at=self._clock.now(), plan_id=plan_id)
        owner = _with_settings(owner, settings)
        async with self._uow() as uow:
            await self._check_plan(uow, plan_id)
            await uow.repository_for(Owner).create(owner)
            for number in numbers:
                await self._add_number(uow, owner.id, number)
            await bump_revision(uow)
            await uow.commit()
        self._changed()
        return await self.show(owner.id)

    async def owners(self) -> list[OwnerView]:
        async with self._uow() as uow:
            owners = await every(uow.repository_for(Owner))
            numbers = await every(uow.repository_for(OwnerNumber))
        return [_view(o, numbers) for o in owners]

    async def show(self, owner_id: str) -> OwnerView:
        async with self._uow() as uow:
            owner = await self._owner(uow, owner_id)
            numbers = await uow.repository_for(OwnerNumber).find_by(owner_id=owner_id)
        return _view(owner, numbers)

    async def update(self, owner_id: str, **changes: Any) -> OwnerView:
        unknown = set(changes) - OWNER_FIELDS
        if unknown:
            raise ValueError(f"unknown owner field(s): {', '.join(sorted(unknown))}")
        async with self._uow() as uow:
            owner = await self._owner(uow, owner_id)
            if "plan_id" in changes:
                await self._check_plan(uow, changes["plan_id"])
            await uow.repository_for(Owner).update(replace(owner, **changes))
            await bump_revision(uow)
            await uow.commit()
        self._changed()
        return await self.show(owner_id)

    async def disable(self, owner_id: str) -> OwnerView:
        return await self.update(owner_id, enabled=False)

    async def rotate_token(self, owner_id: str, auth_token: str) -> OwnerView:
        """The owner's new auth token (after rotating it at Twilio)."""
        async with self._uow() as uow:
            owner = await self._owner(uow, owner_id)
            await uow.repository_for(Owner).update(
                replace(owner, sealed_token=self._cipher.seal(auth_token)))
            await bump_revision(uow)
            await uow.commit()
        self._changed()
        return await self.show(owner_id)

    async def add_number(self, owner_id: str, number: str) -> OwnerView:
        async with self._uow() as uow:
            await self._owner(uow, owner_id)
            await self._add_number(uow, owner_id, number)
            await bump_revision(uow)
            await uow.commit()
        self._changed()
        return await self.show(owner_id)

    async def remove_number(self, owner_id: str, number: str) -> OwnerView:
        async with self._uow() as uow:
            repo = uow.repository_for(OwnerNumber)
            bare = number.removeprefix("whatsapp:")
            for row in await repo.find_by(owner_id=owner_id, number=bare):
                await repo.delete(row.id)
            await bump_revision(uow)
            await uow.commit()
        self._changed()
        return await self.show(owner_id)

    async def put_plan(self, plan: Plan) -> Plan:
        """Creates the plan, or replaces the stored one with the same id."""
        async with self._uow() as uow:
            repo = uow.repository_for(Plan)
            stored = await repo.get_by_id(plan.id)
            saved = (await repo.create(replace(plan, version=0)) if stored is None
                     else await repo.update(replace(plan, version=stored.version)))
            await bump_revision(uow)
            await uow.commit()
        self._changed()
        return saved

    async def plans(self) -> list[Plan]:
        async with self._uow() as uow:
            return await every(uow.repository_for(Plan))

    async def reseal_all(self) -> int:
        """Every token sealed again under the primary key (after adding a new key)."""
        count = 0
        async with self._uow() as uow:
            repo = uow.repository_for(Owner)
            for owner in await every(repo):
                await repo.update(replace(owner, sealed_token=self._cipher.reseal(
                    owner.sealed_token)))
                count += 1
            await bump_revision(uow)
            await uow.commit()
        self._changed()
        return count

    async def ensure(self, *, owner_id: str, name: str, account_sid: str, auth_token: str,
                     numbers: Sequence[str]) -> bool:
        """Provisions this owner unless it is stored (True when it was added now).

        Concurrent processes may race: the loser's create meets the key and is fine.
        """
        async with self._uow() as uow:
            if await uow.repository_for(Owner).get_by_id(owner_id) is not None:
                return False
        try:
            await self.add(name=name, account_sid=account_sid, auth_token=auth_token,
                           numbers=numbers, owner_id=owner_id)
        except (ConcurrencyError, DuplicateOwner, NumberTaken):
            return False
        return True

    async def _owner(self, uow: UnitOfWork, owner_id: str) -> Owner:
        owner = await uow.repository_for(Owner).get_by_id(owner_id)
        if owner is None:
            raise UnknownOwner(f"no owner {owner_id}")
        return owner

    async def _check_plan(self, uow: UnitOfWork, plan_id: str | None) -> None:
        if plan_id is not None and await uow.repository_for(Plan).get_by_id(plan_id) is None:
            raise UnknownPlan(f"no plan {plan_id}")

    async def _add_number(self, uow: UnitOfWork, owner_id: str, number: str) -> None:
        bare = check_number(number.removeprefix("whatsapp:"))
        # The number is the id too: two owners claiming one number meet on the key.
        await uow.repository_for(OwnerNumber).create(
            OwnerNumber(id="N" + bare[1:], owner_id=owner_id, number=bare))


def _with_settings(owner: Owner, settings: dict[str, Any]) -> Owner:
    unknown = set(settings) - OWNER_FIELDS
    if unknown:
        raise ValueError(f"unknown owner field(s): {', '.join(sorted(unknown))}")
    return replace(owner, **settings)


def _view(owner: Owner, numbers: Sequence[OwnerNumber]) -> OwnerView:
    mine = tuple(sorted(n.number for n in numbers if n.owner_id == owner.id))
    return OwnerView(id=owner.id, name=owner.name, account_sid=owner.account_sid,
                     enabled=owner.enabled, numbers=mine, plan_id=owner.plan_id,
                     answers=owner.answers, system_prompt=owner.system_prompt,
                     model=owner.model, reply_language=owner.reply_language,
                     temperature=owner.temperature, fallback_message=owner.fallback_message,
                     closing_message=owner.closing_message, vision=owner.vision,
                     created_at=owner.created_at)
