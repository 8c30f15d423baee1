"""Who owns a Twilio account and number: the seam between the channel and identity.

The webhooks resolve the owner of each request by (``AccountSid``, ``To``) and check the
signature with that owner's token; the senders and the media fetcher take the owner's
credentials by owner id. A deployment without an identity module has one owner, built
from its settings (``SingleOwnerDirectory``); an identity module binds a stored one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

WHATSAPP_PREFIX = "whatsapp:"


def bare_number(address: str) -> str:
    """``whatsapp:+14155238886`` and ``+14155238886`` name one sender number."""
    address = address.strip()
    if address.lower().startswith(WHATSAPP_PREFIX):
        address = address[len(WHATSAPP_PREFIX):]
    return address


@dataclass(frozen=True, slots=True)
class ChannelOwner:
    """What the channel needs of an owner. ``auth_token`` is plain text: never log it
    (it is kept out of ``repr``)."""

    owner_id: str
    account_sid: str
    auth_token: str = field(repr=False)
    numbers: tuple[str, ...] = ()  # bare E.164 numbers (``bare_number``)
    enabled: bool = True

    def has_number(self, address: str) -> bool:
        return bare_number(address) in self.numbers

    @property
    def sending_number(self) -> str | None:
        """The address the internal API sends from: the owner's first number."""
        return WHATSAPP_PREFIX + self.numbers[0] if self.numbers else None


class OwnerDirectory(Protocol):
    """Finds owners; answers from memory (a webhook must not cost a query).

    ``resolve`` answers the *enabled* owner of ``account_sid`` that owns the number ``to``
    (None: unknown account, unknown number, a number of another owner, or a disabled
    owner). ``by_id`` answers the owner whatever its state (senders check ``enabled``).
    """

    async def resolve(self, account_sid: str | None, to: str | None) -> ChannelOwner | None: ...

    async def by_id(self, owner_id: str) -> ChannelOwner | None: ...


class SingleOwnerDirectory:
    """The deployment's one owner from its settings, as before owners were stored.

    A webhook without ``AccountSid`` is taken as the owner's, and ``To`` is not checked:
    a single-owner deployment behaves as it always did.
    """

    def __init__(self, owner: ChannelOwner) -> None:
        self._owner = owner

    async def resolve(self, account_sid: str | None, to: str | None) -> ChannelOwner | None:
        owner = self._owner
        if account_sid not in (None, owner.account_sid) or not owner.enabled:
            return None
        return owner

    async def by_id(self, owner_id: str) -> ChannelOwner | None:
        return self._owner if owner_id == self._owner.owner_id else None
