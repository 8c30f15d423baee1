"""Each owner's sends and media downloads with that owner's own Twilio credentials.

The owner comes from the ``OwnerDirectory`` by the message's owner id, so any module
that rebinds the directory (identity) changes whose credentials are used without the
channel knowing it. The embedded development account never talks to Twilio: its sends
go to the console sender, as a deployment without Twilio settings always did.
"""

from __future__ import annotations

from collections.abc import Callable

from application.errors import DeliveryFailed
from application.ports.media_fetcher import FetchedMedia, MediaFetcher, MediaRejected
from application.ports.message_sender import MessageSender, OutboundEnvelope, SendReceipt
from application.ports.owner_directory import ChannelOwner, OwnerDirectory
from domain.delivery_errors import Outcome

Credentials = tuple[str, str]


class OwnerRoutedSender:
    def __init__(
        self,
        directory: Callable[[], OwnerDirectory],
        twilio: Callable[[ChannelOwner], MessageSender],
        console: MessageSender,
        console_accounts: frozenset[Credentials] = frozenset(),
    ) -> None:
        """``directory``: resolved per send (a module binds it after the kernel);
        ``console_accounts``: (sid, token) pairs that go to ``console``."""
        self._directory = directory
        self._twilio = twilio
        self._console = console
        self._console_accounts = console_accounts
        self._senders: dict[Credentials, MessageSender] = {}

    async def send(self, envelope: OutboundEnvelope) -> SendReceipt:
        owner = await self._directory().by_id(envelope.owner_id)
        if owner is None or not owner.enabled:
            raise DeliveryFailed(f"owner {envelope.owner_id} is unknown or disabled",
                                 retryable=False, outcome=Outcome.BAD_CREDENTIALS)
        key = (owner.account_sid, owner.auth_token)
        if key in self._console_accounts:
            return await self._console.send(envelope)
        sender = self._senders.get(key)
        if sender is None:
            # A rotated token makes a new pair; the old sender is dropped.
            for stale in [k for k in self._senders if k[0] == owner.account_sid]:
                del self._senders[stale]
            sender = self._senders[key] = self._twilio(owner)
        return await sender.send(envelope)


class OwnerRoutedMediaFetcher:
    def __init__(self, directory: Callable[[], OwnerDirectory],
                 fetcher: Callable[[ChannelOwner], MediaFetcher]) -> None:
        self._directory = directory
        self._fetcher = fetcher
        self._fetchers: dict[Credentials, MediaFetcher] = {}

    async def fetch(self, url: str, owner_id: str | None = None) -> FetchedMedia:
        owner = await self._directory().by_id(owner_id) if owner_id else None
        if owner is None or not owner.enabled:
            raise MediaRejected(f"owner {owner_id} is unknown or disabled")
        key = (owner.account_sid, owner.auth_token)
        fetcher = self._fetchers.get(key)
        if fetcher is None:
            for stale in [k for k in self._fetchers if k[0] == owner.account_sid]:
                del self._fetchers[stale]
            fetcher = self._fetchers[key] = self._fetcher(owner)
        return await fetcher.fetch(url, owner_id)
