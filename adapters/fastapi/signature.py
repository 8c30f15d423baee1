"""Twilio webhook signatures, checked with the ``twilio`` package's own validator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)


@dataclass(frozen=True, slots=True)
class TwilioOwner:
    """An account whose webhooks this service takes: the owner id and its signing token."""

    owner_id: str
    account_sid: str
    auth_token: str


OwnerLookup = Callable[[str | None], TwilioOwner | None]


def public_url(request: Request, public_base_url: str | None) -> str:
    """The URL Twilio signed: the configured public base, else what the proxy forwarded.

    Behind a TLS-terminating proxy the app sees http://internal:8000 while Twilio signed
    https://public.example.com; either the setting or X-Forwarded-Proto/Host fixes that.
    """
    path_and_query = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if public_base_url:
        return public_base_url.rstrip("/") + path_and_query
    proto = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    headers = request.headers
    host = headers.get("x-forwarded-host") or headers.get("host") or request.url.netloc
    return f"{proto}://{host.split(',')[0].strip()}{path_and_query}"


def signature_is_valid(request: Request, form: FormData, owner: TwilioOwner,
                       public_base_url: str | None) -> bool:
    """Every posted parameter counts, known or not: Twilio adds fields without notice."""
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        return False
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    validator = RequestValidator(owner.auth_token)
    # FormData has getlist(), which the validator uses for repeated parameters.
    return bool(validator.validate(public_url(request, public_base_url), form, signature,
                                   algorithm))
