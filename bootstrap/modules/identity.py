"""Identity: owners (businesses), their Twilio accounts and numbers, plans and quotas.

Declared through the module API like the conversation flow. It rebinds the kernel's
``OwnerDirectory`` with the stored owners (the flow never imports this module), the
``AssistantProfiles`` with each owner's settings, and adds the admin API. With only the
TWILIO_* settings, the owner they describe is provisioned on first use.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter
from lagom import Container

from adapters.identity import admin_api
from adapters.identity.fernet import FernetTokenCipher, derived_key
from application.identity.cipher import TokenCipher
from application.identity.directory import StoredOwnerDirectory
from application.identity.entities import IDENTITY_ENTITIES
from application.identity.profiles import StoredAssistantProfiles
from application.identity.quota import PlanAllowance, QuotaCounter
from application.identity.store import OwnerStore
from application.ports.assistant_profiles import AssistantProfiles
from application.ports.clock import Clock
from application.ports.owner_directory import OwnerDirectory
from application.ports.reply_allowance import ReplyAllowance
from application.ports.unit_of_work import UnitOfWork
from bootstrap.module import Module
from bootstrap.redaction import register_secret
from bootstrap.settings import Settings, SettingsError
from bootstrap.settings.identity import IdentitySettings
from bootstrap.telemetry import Telemetry

DEFAULT_OWNER_NAME = "default"


class _ScrubbedCipher:
    """Every token opened is registered with the log redactor, so it never reaches a
    log line, whichever code would print it."""

    def __init__(self, inner: TokenCipher) -> None:
        self._inner = inner

    def __repr__(self) -> str:
        return repr(self._inner)

    def seal(self, token: str) -> str:
        register_secret(token)
        return self._inner.seal(token)

    def open(self, sealed: str) -> str:
        token = self._inner.open(sealed)
        register_secret(token)
        return token

    def reseal(self, sealed: str) -> str:
        return self._inner.reseal(sealed)


def token_cipher(settings: Settings, own: IdentitySettings) -> TokenCipher:
    keys = own.keys()
    if not keys:
        if settings.api_environment == "production":
            raise SettingsError("IDENTITY_TOKEN_KEYS is required in production")
        # Zero-config: a key derived from SECRET_KEY (itself refused at its default in
        # production), so a development database keeps opening its tokens.
        keys = [derived_key(settings.secret_key.get_secret_value())]
    try:
        return _ScrubbedCipher(FernetTokenCipher(keys))
    except ValueError as error:
        raise SettingsError(f"IDENTITY_TOKEN_KEYS: {error}") from None


def bind(container: Container, own: IdentitySettings) -> None:
    settings = container[Settings]
    cipher = token_cipher(settings, own)
    store = OwnerStore(lambda: container[UnitOfWork], cipher, container[Clock])

    async def provision() -> None:
        # The owner the TWILIO_* settings describe (the embedded one when unset), under
        # the id rows stored before owners existed carry: its account SID.
        await store.ensure(
            owner_id=settings.owner_account_sid, name=DEFAULT_OWNER_NAME,
            account_sid=settings.owner_account_sid, auth_token=settings.owner_auth_token,
            numbers=[settings.owner_phone_number])

    directory = StoredOwnerDirectory(
        lambda: container[UnitOfWork], cipher, refresh_seconds=own.refresh_seconds,
        provision=provision)
    store.on_change = directory.invalidate
    container[TokenCipher] = cipher
    container[OwnerStore] = store
    container[StoredOwnerDirectory] = directory
    container[OwnerDirectory] = directory
    container[AssistantProfiles] = StoredAssistantProfiles(directory)
    refused = container[Telemetry].meter.create_counter(
        "wta.quota.refused", unit="{reply}",
        description="Replies an owner's plan refused over its monthly quota, by owner and "
                    "whether the notice went instead")

    def count_refusal(owner_id: str, notice: bool) -> None:
        refused.add(1, {"owner_id": owner_id, "notice": notice})

    counter = QuotaCounter(lambda: container[UnitOfWork], container[Clock])
    container[QuotaCounter] = counter
    container[ReplyAllowance] = PlanAllowance(directory, counter, count_refusal)


def routers(container: Container) -> Sequence[APIRouter]:
    """The admin API, only when IDENTITY_ADMIN_API_KEY is set."""
    key = container[IdentitySettings].admin_api_key
    if key is None:
        return []
    return [admin_api.make_router(container[OwnerStore], key.get_secret_value())]


MODULE = Module(
    name="identity",
    entities=IDENTITY_ENTITIES,
    routers=routers,
    settings=IdentitySettings,
    bind=bind,
)
