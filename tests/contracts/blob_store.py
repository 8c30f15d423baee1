"""Behaviour every blob store adapter must show. Subclass ``BlobStoreContract`` once per
adapter (as ``Test...``) with a ``store`` fixture giving an empty store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from application.ports.blob_store import Blob, InvalidBlobKey


class BlobStoreContract:
    async def test_a_blob_reads_back_as_written(self, store: Any) -> None:
        data = bytes(range(256)) * 40  # binary, every byte value
        await store.put("owner/message/0", data, "image/jpeg")
        assert await store.get("owner/message/0") == Blob(data, "image/jpeg")

    async def test_an_unknown_key_is_none(self, store: Any) -> None:
        assert await store.get("owner/never/0") is None

    async def test_put_twice_keeps_the_last_blob(self, store: Any) -> None:
        await store.put("k/1", b"first", "text/plain")
        await store.put("k/1", b"second", "application/pdf")
        assert await store.get("k/1") == Blob(b"second", "application/pdf")

    async def test_delete_says_whether_something_was_there(self, store: Any) -> None:
        await store.put("k/2", b"x", "text/plain")
        assert await store.delete("k/2") is True
        assert await store.get("k/2") is None
        assert await store.delete("k/2") is False

    async def test_keys_are_distinct_and_nested_keys_coexist(self, store: Any) -> None:
        await store.put("a/b", b"1", "text/plain")
        await store.put("a/bc", b"2", "text/plain")
        await store.put("a/b2/c", b"3", "text/plain")
        assert (await store.get("a/b")).data == b"1"
        assert (await store.get("a/bc")).data == b"2"
        assert (await store.get("a/b2/c")).data == b"3"

    async def test_an_empty_blob_is_a_blob(self, store: Any) -> None:
        await store.put("empty", b"", "application/octet-stream")
        assert await store.get("empty") == Blob(b"", "application/octet-stream")

    async def test_concurrent_writers_of_one_key_leave_one_whole_blob(self, store: Any) -> None:
        blobs = [bytes([n]) * 50_000 for n in range(5)]
        await asyncio.gather(*(store.put("race", b, "application/octet-stream")
                               for b in blobs))
        stored = await store.get("race")
        assert stored is not None and stored.data in blobs

    @pytest.mark.parametrize("key", ["", "/abs", "a/../b", "..", "a//b", "a/", "with space",
                                     "nul\x00", "a" * 300, "é"])
    async def test_bad_keys_are_refused_before_any_io(self, store: Any, key: str) -> None:
        with pytest.raises(InvalidBlobKey):
            await store.put(key, b"x", "text/plain")
        with pytest.raises(InvalidBlobKey):
            await store.get(key)
