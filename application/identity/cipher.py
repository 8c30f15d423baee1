"""The port that seals owners' auth tokens at rest (an adapter holds the keys)."""

from __future__ import annotations

from typing import Protocol

from application.errors import ApplicationError


class TokenUnreadable(ApplicationError):
    """A sealed token no configured key opens (a key was dropped too early)."""

    code = "TOKEN_UNREADABLE"


class TokenCipher(Protocol):
    def seal(self, token: str) -> str:
        """Ciphertext (text-safe) of ``token`` under the primary key."""
        ...

    def open(self, sealed: str) -> str:
        """The token; ``TokenUnreadable`` when no key opens it (never echoes it)."""
        ...

    def reseal(self, sealed: str) -> str:
        """The same token sealed under the primary key (key rotation)."""
        ...
