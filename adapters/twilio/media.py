"""``MediaFetcher`` for Twilio's media URLs.

Twilio serves an inbound item at ``/2010-04-01/Accounts/{sid}/Messages/{MM}/Media/{ME}``
behind HTTP Basic auth (the account's sid and token) and answers with a redirect to a
short-lived URL on its CDN. The credentials go only to Twilio's own host: a URL elsewhere
is refused, and httpx drops the Authorization header when a redirect leaves the origin.
The body is streamed and cut off past ``max_bytes``; only allow-listed media types are
kept.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

import httpx

from application.ports.media_fetcher import FetchedMedia, MediaRejected, MediaUnavailable

_NOT_SENT_OR_TRANSIENT = (httpx.TransportError,)


class TwilioMediaFetcher:
    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        client: httpx.AsyncClient,
        max_bytes: int,
        allowed_types: Collection[str],
        base_url: str = "https://api.twilio.com",
    ) -> None:
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._token = auth_token
        self._client = client
        self._max_bytes = max_bytes
        self._allowed = frozenset(t.lower() for t in allowed_types)
        self._origin = _origin(base_url)

    def __repr__(self) -> str:
        return f"TwilioMediaFetcher(origin={self._origin!r})"

    async def fetch(self, url: str, owner_id: str | None = None) -> FetchedMedia:
        # One account's fetcher: ``owner_id`` is chosen by whoever built it for the owner.
        if _origin(url) != self._origin:
            # The account's credentials must never be sent to another host.
            raise MediaRejected(f"media URL is not on {self._origin}")
        try:
            async with self._client.stream("GET", url, auth=self._auth,
                                           follow_redirects=True) as response:
                self._check_status(response)
                content_type = _media_type(response.headers.get("content-type"))
                if content_type not in self._allowed:
                    raise MediaRejected(f"media type {content_type or 'none'} is not allowed")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self._max_bytes:
                    raise MediaRejected(f"media is larger than {self._max_bytes} bytes")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > self._max_bytes:
                        raise MediaRejected(f"media is larger than {self._max_bytes} bytes")
        except _NOT_SENT_OR_TRANSIENT as exc:
            raise MediaUnavailable(
                f"media download failed: {type(exc).__name__}".replace(self._token, "***")
            ) from exc
        return FetchedMedia(bytes(data), content_type)

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if response.is_success:
            return
        if status == 429 or status >= 500:
            raise MediaUnavailable(f"media host answered {status}")
        raise MediaRejected(f"media host answered {status}")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{(parts.netloc or '').lower()}"


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()
