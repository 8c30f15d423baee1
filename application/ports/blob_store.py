"""Where downloaded media is kept: bytes under a key, with their content type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from application.errors import ApplicationError

# Path-like keys ("owner/message/0"): no "..", no leading "/", nothing a filesystem or S3
# would read differently.
_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}){0,7}$")


class InvalidBlobKey(ApplicationError):
    code = "INVALID_BLOB_KEY"


class BlobStoreUnavailable(ApplicationError):
    """The store could not be reached or failed; the caller may retry later."""

    code = "BLOB_STORE_UNAVAILABLE"


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise InvalidBlobKey(f"invalid blob key {key!r}")
    return key


@dataclass(frozen=True, slots=True)
class Blob:
    data: bytes
    content_type: str


class BlobStore(Protocol):
    """Keys are checked with ``check_key`` (``InvalidBlobKey``) before any I/O; backend
    failures raise ``BlobStoreUnavailable``.

    - ``put`` overwrites: writing a key twice (a retried download) leaves one blob, and a
      reader never sees a half-written one.
    - ``get`` answers None for a key never written (or deleted).
    - ``delete`` answers whether something was there.
    """

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> Blob | None: ...

    async def delete(self, key: str) -> bool: ...
