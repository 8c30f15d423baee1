"""The internal API's JWTs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from bootstrap.settings._common import ConcernSettings

DEFAULT_SECRET_KEY = "change-me-in-production"  # noqa: S105 - refused in production
# HS256 wants a key at least as long as its hash (RFC 7518 3.2).
MIN_SECRET_KEY_BYTES = 32


class AuthSettings(ConcernSettings):
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    # HMAC only: tokens are signed with SECRET_KEY (and "none" must never be accepted).
    algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_expire_minutes: int = Field(30, ge=1)
