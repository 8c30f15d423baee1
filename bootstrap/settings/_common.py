"""What several settings models share: the base configuration and value checks."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ConcernSettings(BaseSettings):
    """One concern's settings. The composed ``Settings`` reads them all together."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)


def http_url(value: str | None) -> str | None:
    """A base URL: http(s) only, without its trailing slash."""
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


def split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value
