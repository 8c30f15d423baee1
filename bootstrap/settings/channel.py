"""The WhatsApp channel's sending rules: the 24-hour window and inbound media."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from bootstrap.settings._common import ConcernSettings

# The media types WhatsApp delivers; others are refused rather than stored.
DEFAULT_MEDIA_TYPES = (
    "image/jpeg", "image/png", "image/webp", "audio/ogg", "audio/mpeg", "audio/amr",
    "audio/mp4", "audio/aac", "video/mp4", "video/3gpp", "application/pdf", "text/plain",
    "text/vcard",
)


class ChannelSettings(ConcernSettings):
    # The template a reply uses once the contact's 24-hour window closed (unset: it fails).
    twilio_fallback_content_sid: str | None = Field(None, pattern=r"^HX[0-9a-fA-F]{32}$")
    twilio_window_hours: float = Field(24.0, gt=0)
    # Inbound media: fetched with the account's credentials into a blob store.
    twilio_media_store: Literal["local", "s3"] = "local"
    twilio_media_dir: str = "./var/media"
    twilio_media_s3_bucket: str | None = None
    twilio_media_s3_endpoint_url: str | None = None
    twilio_media_s3_region: str = "us-east-1"
    twilio_media_s3_access_key_id: str | None = None
    twilio_media_s3_secret_access_key: SecretStr | None = None
    twilio_media_max_bytes: int = Field(16 * 1024 * 1024, gt=0)
    twilio_media_content_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_MEDIA_TYPES))

    @field_validator("twilio_media_content_types", mode="before")
    @classmethod
    def _split_media_types(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip().lower() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> Self:
        if self.twilio_media_store == "s3" and not self.twilio_media_s3_bucket:
            raise ValueError("TWILIO_MEDIA_STORE=s3 needs TWILIO_MEDIA_S3_BUCKET")
        return self
