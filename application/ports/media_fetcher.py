"""Downloads an inbound message's media from the provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from application.errors import ApplicationError


class MediaRejected(ApplicationError):
    """This item can never be downloaded as it is (too large, a type not allowed, gone,
    credentials refused): recorded on the item, not retried."""

    code = "MEDIA_REJECTED"


class MediaUnavailable(ApplicationError):
    """The provider could not serve it now (429, 5xx, network): the job retries."""

    code = "MEDIA_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class FetchedMedia:
    data: bytes
    content_type: str


class MediaFetcher(Protocol):
    async def fetch(self, url: str, owner_id: str | None = None) -> FetchedMedia:
        """The item's bytes and media type; ``MediaRejected`` or ``MediaUnavailable``.
        ``owner_id``: whose message it came with (whose credentials fetch it)."""
        ...
