"""The images of an inbound message, for the model when it can see them.

Only items the download stored (a blob key) and typed as images count. When the model
cannot see images (``MediaPolicy.vision`` off) the reply says so instead of asking the
model about a picture it would never see.
"""

from __future__ import annotations

from application.ports.blob_store import BlobStore
from application.ports.responder import Image
from domain.inbound_content import MediaKind
from domain.message import Message

UNSUPPORTED_IMAGE = (
    "I can't look at images here. Could you tell me in words what it shows?"
)


def image_keys(message: Message) -> list[tuple[str, str]]:
    """(blob key, content type) of each stored image item."""
    found = []
    for item in message.metadata.get("media") or []:
        if not isinstance(item, dict) or "blob_key" not in item:
            continue
        kind = str(item.get("stored_type") or item.get("content_type") or "")
        if MediaKind.of(kind) is MediaKind.IMAGE:
            found.append((str(item["blob_key"]), kind))
    return found


async def load_images(blobs: BlobStore, message: Message) -> list[Image]:
    """The stored images' bytes; one gone from the store is left out."""
    images = []
    for key, kind in image_keys(message):
        blob = await blobs.get(key)
        if blob is not None:
            images.append(Image(blob.content_type or kind, blob.data))
    return images
