"""One consistent, in-memory view of every owner, number and plan.

Built from the store in one unit of work; lookups against it cost no query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from application.identity.cipher import TokenCipher, TokenUnreadable
from application.ports.owner_directory import ChannelOwner, bare_number
from domain.identity.owner import Owner, OwnerNumber, Plan


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    owners: dict[str, Owner] = field(default_factory=dict)
    channel: dict[str, ChannelOwner] = field(default_factory=dict)  # by owner id
    # (account sid, bare number) -> owner id
    routes: dict[tuple[str, str], str] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)

    def resolve(self, account_sid: str | None, to: str | None) -> ChannelOwner | None:
        if not account_sid or not to:
            return None
        owner_id = self.routes.get((account_sid, bare_number(to)))
        owner = self.channel.get(owner_id) if owner_id else None
        return owner if owner is not None and owner.enabled else None

    def plan_of(self, owner_id: str) -> Plan | None:
        owner = self.owners.get(owner_id)
        if owner is None or owner.plan_id is None:
            return None
        return self.plans.get(owner.plan_id)


def build_snapshot(revision: int, owners: Iterable[Owner], numbers: Iterable[OwnerNumber],
                   plans: Iterable[Plan], cipher: TokenCipher) -> Snapshot:
    snapshot = Snapshot(revision=revision, plans={p.id: p for p in plans})
    by_owner: dict[str, list[str]] = {}
    for number in sorted(numbers, key=lambda n: n.id):
        by_owner.setdefault(number.owner_id, []).append(number.number)
    for owner in owners:
        try:
            token = cipher.open(owner.sealed_token)
        except TokenUnreadable:
            # Its webhooks are refused and its sends fail until the key is given back;
            # every other owner keeps working.
            token = ""
        mine = tuple(by_owner.get(owner.id, ()))
        snapshot.owners[owner.id] = owner
        snapshot.channel[owner.id] = ChannelOwner(
            owner_id=owner.id, account_sid=owner.account_sid, auth_token=token,
            numbers=mine, enabled=owner.enabled and bool(token))
        for bare in mine:
            snapshot.routes[(owner.account_sid, bare)] = owner.id
    return snapshot
