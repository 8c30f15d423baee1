"""An owner, its sender numbers and its plan: what the identity module stores.

The auth token is kept sealed (encrypted by the application's ``TokenCipher``): the
domain never holds it in plain text.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import datetime

from domain.errors import DomainError

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_NUMBER = re.compile(r"^\+[1-9][0-9]{6,14}$")
_OWNER_ID = re.compile(r"^[0-9A-Za-z]{1,64}$")


class DuplicateOwner(DomainError):
    code = "DUPLICATE_OWNER"


class NumberTaken(DomainError):
    """A sender number belongs to exactly one owner."""

    code = "NUMBER_TAKEN"


class UnknownOwner(DomainError):
    code = "UNKNOWN_OWNER"


class UnknownPlan(DomainError):
    code = "UNKNOWN_PLAN"


class InvalidOwner(DomainError):
    code = "INVALID_OWNER"


def check_account_sid(value: str) -> str:
    if not _ACCOUNT_SID.match(value):
        raise InvalidOwner("an account SID is AC followed by 32 hexadecimal digits")
    return value


def check_number(value: str) -> str:
    if not _NUMBER.match(value):
        raise InvalidOwner("a sender number is E.164: + and 7 to 15 digits")
    return value


def check_owner_id(value: str) -> str:
    # Owner ids are primary keys paged by cursor: letters and digits only.
    if not _OWNER_ID.match(value):
        raise InvalidOwner("an owner id is 1 to 64 letters or digits")
    return value


class OverQuota(enum.StrEnum):
    NOTICE = "notice"  # one configured notice per period, then silence
    SILENCE = "silence"


@dataclass(frozen=True, slots=True)
class Plan:
    """Features an owner gets. ``monthly_quota``: replies per calendar month (None: no
    limit)."""

    id: str
    name: str
    assistant: bool = True
    media: bool = True
    monthly_quota: int | None = None
    over_quota: OverQuota = OverQuota.SILENCE
    notice: str | None = None
    version: int = 0


@dataclass(frozen=True, slots=True)
class Owner:
    """A business. ``id`` is its owner id (the default owner's is its account SID, so an
    existing single-owner database maps to it)."""

    id: str
    name: str
    account_sid: str
    sealed_token: str
    enabled: bool
    created_at: datetime
    plan_id: str | None = None
    answers: bool = True
    system_prompt: str | None = None
    model: str | None = None
    reply_language: str | None = None
    temperature: float | None = None
    fallback_message: str | None = None
    closing_message: str | None = None
    vision: bool | None = None  # None: the deployment's LLM_VISION
    version: int = 0

    def disabled(self) -> Owner:
        return replace(self, enabled=False)


@dataclass(frozen=True, slots=True)
class OwnerNumber:
    """One WhatsApp sender number (bare E.164) and its owner; unique by number."""

    id: str
    owner_id: str
    number: str
    version: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Replies counted for one owner in one period (``YYYYMM``); ``id`` is
    ``<owner id>P<period>`` so concurrent first writers meet on one key."""

    id: str
    owner_id: str
    period: str
    replies: int = 0
    notices: int = 0
    version: int = 0


@dataclass(frozen=True, slots=True)
class DirectoryRevision:
    """Bumped by every change to owners, numbers or plans: caches compare it."""

    id: str
    revision: int = 0
    version: int = 0


def usage_id(owner_id: str, period: str) -> str:
    return f"{owner_id}P{period}"
