from adapters.s3_blobs.store import S3BlobStore

__all__ = ["S3BlobStore"]
