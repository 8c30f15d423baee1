"""Internal API credentials: a Bearer JWT naming one owner, or the X-API-Key.

Tokens are HMAC-signed with SECRET_KEY; claims ``sub`` and ``owner`` (the owner id), ``iat``
and ``exp``. The API key belongs to the default owner. Every failure is the same 401
envelope, so a caller cannot probe which part was wrong beyond "expired".
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from fastapi import HTTPException, Request

API_KEY_HEADER = "X-API-Key"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="whatsapp-core"'}
_REQUIRED_CLAIMS = ["exp", "iat", "sub"]


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired or missing a claim."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: every query is scoped to this owner."""

    owner_id: str
    method: str  # "jwt" or "api_key"


@dataclass(frozen=True, slots=True)
class TokenSettings:
    secret_key: str
    algorithm: str = "HS256"
    expire_minutes: int = 30


def create_access_token(
    owner_id: str, settings: TokenSettings, *, now: datetime | None = None,
    expires_in: timedelta | None = None,
) -> str:
    issued = now or datetime.now(UTC)
    lifetime = expires_in if expires_in is not None else timedelta(minutes=settings.expire_minutes)
    claims = {"sub": owner_id, "owner": owner_id, "iat": issued, "exp": issued + lifetime}
    return jwt.encode(claims, settings.secret_key, algorithm=settings.algorithm)


def verify_access_token(token: str, settings: TokenSettings) -> str:
    """The owner id the token names; raises ``InvalidToken``."""
    try:
        claims = jwt.decode(
            token, settings.secret_key,
            # One algorithm, never the token's own choice ("none", or RS/HS confusion).
            algorithms=[settings.algorithm],
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("invalid token") from exc
    owner = claims.get("owner", claims["sub"])
    if not isinstance(owner, str) or not owner or owner != claims["sub"]:
        raise InvalidToken("invalid token")
    return owner


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers=_CHALLENGE)


def make_authenticator(
    tokens: TokenSettings, *, api_key: str | None, api_key_owner: str
) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency giving the caller's ``Principal`` or answering 401."""
    expected_key = api_key.encode() if api_key else None

    async def authenticate(request: Request) -> Principal:
        presented_key = request.headers.get(API_KEY_HEADER)
        if presented_key is not None:
            # Constant time; an unset key accepts nothing (compared against itself: no
            # early exit that would tell "no key configured" apart by timing).
            ok = hmac.compare_digest(presented_key.encode(), expected_key or b"") and bool(
                expected_key)
            if not ok:
                raise _unauthorized("invalid credentials")
            return Principal(api_key_owner, "api_key")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("missing credentials")
        try:
            owner = verify_access_token(token.strip(), tokens)
        except InvalidToken as exc:
            raise _unauthorized(str(exc)) from None
        return Principal(owner, "jwt")

    return authenticate
