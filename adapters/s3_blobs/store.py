"""``BlobStore`` on S3 (or any S3-compatible store) through aiobotocore: for several
machines. One client is opened on first use and closed by ``aclose``.

S3's PUT replaces an object atomically, so a reader sees the old blob or the new one.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from application.ports.blob_store import Blob, BlobStoreUnavailable, check_key

_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3BlobStore:
    def __init__(
        self,
        *,
        bucket: str,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
    ) -> None:
        self._bucket = bucket
        self._prefix = prefix
        self._options: dict[str, Any] = {
            "region_name": region,
            "endpoint_url": endpoint_url,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            # Path style works with every S3-compatible server (and moto on loopback).
            "config": Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        }
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self._bucket!r})"

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        check_key(key)
        client = await self._connected()
        try:
            await client.put_object(Bucket=self._bucket, Key=self._prefix + key, Body=data,
                                    ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreUnavailable(f"S3 put failed: {_describe(exc)}") from exc

    async def get(self, key: str) -> Blob | None:
        check_key(key)
        client = await self._connected()
        try:
            answer = await client.get_object(Bucket=self._bucket, Key=self._prefix + key)
            async with answer["Body"] as body:
                data = await body.read()
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise BlobStoreUnavailable(f"S3 get failed: {_describe(exc)}") from exc
        except BotoCoreError as exc:
            raise BlobStoreUnavailable(f"S3 get failed: {_describe(exc)}") from exc
        return Blob(bytes(data), str(answer.get("ContentType") or ""))

    async def delete(self, key: str) -> bool:
        check_key(key)
        client = await self._connected()
        try:
            # S3's DELETE answers 204 whether or not the key existed: look first.
            await client.head_object(Bucket=self._bucket, Key=self._prefix + key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise BlobStoreUnavailable(f"S3 head failed: {_describe(exc)}") from exc
        except BotoCoreError as exc:
            raise BlobStoreUnavailable(f"S3 head failed: {_describe(exc)}") from exc
        try:
            await client.delete_object(Bucket=self._bucket, Key=self._prefix + key)
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreUnavailable(f"S3 delete failed: {_describe(exc)}") from exc
        return True

    async def _connected(self) -> Any:
        async with self._lock:
            if self._client is None:
                stack = AsyncExitStack()
                self._client = await stack.enter_async_context(
                    get_session().create_client("s3", **self._options))
                self._stack = stack
            return self._client

    async def aclose(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack, self._client = None, None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"
