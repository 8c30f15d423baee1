"""What an inbound WhatsApp message carries, typed: text, media, a location, a button reply.

Parsed from Twilio's webhook fields (``Latitude``/``Longitude``/``Address``/``Label`` for a
shared location, ``ButtonPayload``/``ButtonText`` for a quick-reply button, ``NumMedia`` with
``MediaUrlN``/``MediaContentTypeN`` for attachments) and kept in the message's
``metadata["content"]``, so every backend stores it without a schema change.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from domain.errors import DomainError
from domain.message import MessageType

KEY = "content"


class InvalidContent(DomainError):
    code = "INVALID_CONTENT"


class MediaKind(enum.StrEnum):
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"

    @classmethod
    def of(cls, content_type: str) -> MediaKind:
        major = content_type.split("/", 1)[0].strip().lower()
        return cls(major) if major in ("image", "audio", "video") else cls.DOCUMENT


@dataclass(frozen=True, slots=True)
class MediaItem:
    url: str
    content_type: str
    kind: MediaKind
    blob_key: str | None = None  # set once the item is downloaded


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    address: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latitude) and -90 <= self.latitude <= 90):
            raise InvalidContent("Latitude must be between -90 and 90")
        if not (math.isfinite(self.longitude) and -180 <= self.longitude <= 180):
            raise InvalidContent("Longitude must be between -180 and 180")


@dataclass(frozen=True, slots=True)
class ButtonReply:
    payload: str
    text: str


@dataclass(frozen=True, slots=True)
class InboundContent:
    type: MessageType
    media: tuple[MediaItem, ...] = ()
    location: Location | None = None
    button: ButtonReply | None = None

    @classmethod
    def parse(
        cls, fields: Mapping[str, str], media: Sequence[tuple[str, str]] = ()
    ) -> InboundContent:
        """From Twilio's fields (formats already checked at the edge); raises
        ``InvalidContent`` for a location out of range or half a location."""
        items = tuple(MediaItem(url, ct, MediaKind.of(ct)) for url, ct in media)
        lat, lon = fields.get("Latitude"), fields.get("Longitude")
        if lat or lon:
            if not (lat and lon):
                raise InvalidContent("a location needs both Latitude and Longitude")
            try:
                location = Location(float(lat), float(lon),
                                    fields.get("Address") or None, fields.get("Label") or None)
            except ValueError:
                raise InvalidContent("Latitude and Longitude must be numbers") from None
            return cls(MessageType.LOCATION, items, location=location)
        payload = fields.get("ButtonPayload")
        if payload:
            button = ButtonReply(payload, fields.get("ButtonText") or "")
            return cls(MessageType.INTERACTIVE, items, button=button)
        return cls(MessageType.MEDIA if items else MessageType.TEXT, items)

    def to_metadata(self) -> dict[str, Any]:
        content: dict[str, Any] = {"kind": self.kind}
        if self.location is not None:
            content["location"] = asdict(self.location)
        if self.button is not None:
            content["button"] = asdict(self.button)
        return {KEY: content, "media": [_media_row(m) for m in self.media]}

    @property
    def kind(self) -> str:
        """``text``, ``location``, ``button``, or the first attachment's media kind."""
        if self.location is not None:
            return "location"
        if self.button is not None:
            return "button"
        return str(self.media[0].kind) if self.media else "text"


def _media_row(item: MediaItem) -> dict[str, Any]:
    row: dict[str, Any] = {"url": item.url, "content_type": item.content_type,
                           "kind": str(item.kind)}
    if item.blob_key is not None:
        row["blob_key"] = item.blob_key
    return row
