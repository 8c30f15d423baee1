"""``BlobStore`` in a local directory: the default, for one machine.

Each blob is a file under ``root/data/<key>``, its content type a file under
``root/types/<key>``; both are written to a temporary file and renamed into place, so a
reader sees the old blob or the new one, never a part. File I/O runs in a thread.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from application.ports.blob_store import Blob, BlobStoreUnavailable, check_key

T = TypeVar("T")


class LocalDirectoryBlobStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(root)

    def __repr__(self) -> str:
        return f"LocalDirectoryBlobStore({str(self._root)!r})"

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        check_key(key)
        await _in_thread(self._put, key, data, content_type)

    async def get(self, key: str) -> Blob | None:
        check_key(key)
        return await _in_thread(self._get, key)

    async def delete(self, key: str) -> bool:
        check_key(key)
        return await _in_thread(self._delete, key)

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self._root / "data" / key, self._root / "types" / key

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        data_path, type_path = self._paths(key)
        # The type first: a blob visible without its type would read as untyped.
        _replace(type_path, content_type.encode())
        _replace(data_path, data)

    def _get(self, key: str) -> Blob | None:
        data_path, type_path = self._paths(key)
        try:
            data = data_path.read_bytes()
            content_type = type_path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return Blob(data, content_type)

    def _delete(self, key: str) -> bool:
        data_path, type_path = self._paths(key)
        try:
            data_path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return False
        type_path.unlink(missing_ok=True)
        return True


def _replace(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


async def _in_thread(func: Callable[..., T], *args: object) -> T:
    try:
        return await asyncio.to_thread(func, *args)
    except OSError as exc:
        # A full disk or a permission problem: the caller retries later.
        raise BlobStoreUnavailable(f"local blob store failed: {type(exc).__name__}") from exc
