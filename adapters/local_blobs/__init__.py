from adapters.local_blobs.store import LocalDirectoryBlobStore

__all__ = ["LocalDirectoryBlobStore"]
