"""``TokenCipher`` over ``cryptography``'s Fernet (AES-128-CBC + HMAC-SHA256).

Several keys may be configured: the first seals, every one opens (``MultiFernet``), so a
new key is put first, ``wta owner rotate-key`` reseals every token, then the old key
can go.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from application.identity.cipher import TokenUnreadable


def derived_key(secret: str) -> str:
    """A Fernet key derived from a secret (the zero-config key, from ``SECRET_KEY``)."""
    digest = hashlib.sha256(b"wta-identity-token-key\x00" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


class FernetTokenCipher:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError:
            # Never echo the key.
            raise ValueError("a token key is not a Fernet key (32 url-safe base64 bytes)") from None

    def __repr__(self) -> str:
        return "FernetTokenCipher(***)"

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except (InvalidToken, ValueError):
            raise TokenUnreadable("no configured key opens this token") from None

    def reseal(self, sealed: str) -> str:
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except (InvalidToken, ValueError):
            raise TokenUnreadable("no configured key opens this token") from None
