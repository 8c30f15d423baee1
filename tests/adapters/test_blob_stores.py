"""The blob store contract on the local directory and on S3 (moto's server on loopback)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.local_blobs import LocalDirectoryBlobStore
from adapters.s3_blobs import S3BlobStore
from application.ports.blob_store import BlobStoreUnavailable
from tests.conftest import free_port
from tests.contracts.blob_store import BlobStoreContract
from tests.fakes.moto_sqs import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoSqs, moto_sqs

__all__ = ["moto_sqs"]  # moto's server serves S3 as well as SQS


class TestLocalDirectoryBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalDirectoryBlobStore:
        return LocalDirectoryBlobStore(tmp_path / "media")


def s3_store(endpoint_url: str, bucket: str) -> S3BlobStore:
    return S3BlobStore(bucket=bucket, region=REGION, endpoint_url=endpoint_url,
                       access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_ACCESS_KEY)


def new_bucket(moto: MotoSqs) -> str:
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    bucket = f"media-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto.endpoint_url, region_name=REGION,
                 aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
                 config=Config(s3={"addressing_style": "path"})).create_bucket(Bucket=bucket)
    return bucket


@pytest.mark.integration
class TestS3BlobStore(BlobStoreContract):
    @pytest.fixture
    async def store(self, moto_sqs: MotoSqs) -> AsyncIterator[Any]:
        store = s3_store(moto_sqs.endpoint_url, new_bucket(moto_sqs))
        yield store
        await store.aclose()


async def test_s3_unreachable_is_blob_store_unavailable() -> None:
    store = s3_store(f"http://127.0.0.1:{free_port()}", "media-nowhere")
    try:
        with pytest.raises(BlobStoreUnavailable):
            await store.put("k", b"x", "text/plain")
        with pytest.raises(BlobStoreUnavailable):
            await store.get("k")
    finally:
        await store.aclose()


async def test_local_store_on_an_unwritable_path_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = LocalDirectoryBlobStore(blocker)
    with pytest.raises(BlobStoreUnavailable):
        await store.put("k", b"x", "text/plain")
