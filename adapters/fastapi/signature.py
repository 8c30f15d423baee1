"""Twilio webhook signatures, checked with the ``twilio`` package's own validator."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from starlette.datastructures import FormData
from starlette.requests import Request
from twilio.request_validator import (  # type: ignore[import-untyped]  # no stubs
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    compare,
    get_signature_algorithm,
)

from application.ports.owner_directory import ChannelOwner

# An account whose webhooks this service takes: the owner id and its signing token.
TwilioOwner = ChannelOwner
# (AccountSid, To) -> the owner whose token signs this request, None to refuse it.
OwnerLookup = Callable[[str | None, str | None], Awaitable[ChannelOwner | None]]


class TrustedProxies:
    """The peers whose forwarded headers may say which URL Twilio called."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self._networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def trusts(self, request: Request) -> bool:
        if not self._networks or request.client is None:
            return False
        try:
            peer = ipaddress.ip_address(request.client.host)
        except ValueError:
            return False
        return any(peer in network for network in self._networks)


def public_url(request: Request, public_base_url: str | None,
               proxies: TrustedProxies | None = None) -> str:
    """The URL Twilio signed: the configured public base, else the one this request reached.

    Behind a TLS-terminating proxy the app sees http://internal:8000 while Twilio signed
    https://public.example.com; either the setting or the proxy's X-Forwarded-Proto/Host
    fixes that. Those headers, and Host, are the client's word: they count only from a
    trusted proxy, otherwise the server's own address does (a request signed for another
    host must not validate here).
    """
    path_and_query = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if public_base_url:
        return public_base_url.rstrip("/") + path_and_query
    headers = request.headers
    scheme = request.url.scheme
    server = request.scope.get("server")
    if server:
        name = f"[{server[0]}]" if ":" in str(server[0]) else str(server[0])
        host = f"{name}:{server[1]}" if server[1] else name
    else:
        host = request.url.netloc
    if proxies is not None and proxies.trusts(request):
        scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
        host = (headers.get("x-forwarded-host") or headers.get("host") or host).split(",")[0]
    return f"{scheme}://{host.strip()}{path_and_query}"


def signature_is_valid(request: Request, form: FormData, owner: TwilioOwner,
                       public_base_url: str | None,
                       proxies: TrustedProxies | None = None) -> bool:
    """Every posted parameter counts, known or not: Twilio adds fields without notice."""
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        return False
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    validator = RequestValidator(owner.auth_token)
    # FormData has getlist(), which the validator uses for repeated parameters.
    url = public_url(request, public_base_url, proxies)
    # The URL as requested first: validate() always signs it twice (with and without the
    # port), and this one HMAC is what Twilio normally signs.
    with contextlib.suppress(ValueError):  # an unknown algorithm: validate() says so
        if compare(validator.compute_signature(url, form, algorithm), signature):
            return True
    try:
        return bool(validator.validate(url, form, signature, algorithm))
    except ValueError:  # a forwarded host that is no URL authority (bad port, ...)
        return False
