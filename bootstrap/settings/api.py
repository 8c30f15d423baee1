"""The HTTP edge: where it listens, what it trusts, its bounds, its docs."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from bootstrap.settings._common import ConcernSettings, http_url, split_commas


class ApiSettings(ConcernSettings):
    api_environment: Literal["development", "test", "staging", "production"] = "development"
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_public_base_url: str | None = None
    api_docs_enabled: bool | None = None
    api_embedded_worker: bool = False
    # Migrate at API start-up (single-node deployments). Unset: on in development only.
    api_auto_migrate: bool | None = None
    # Peers (IPs or CIDR networks) whose X-Forwarded-Proto/X-Forwarded-Host/Host may shape
    # the URL a Twilio signature is checked against. Empty: no one's.
    api_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The edge's bounds, enforced while reading, before anything is parsed or checked.
    api_max_body_bytes: int = Field(65536, ge=1024, le=16 * 1024 * 1024)
    api_max_form_fields: int = Field(100, ge=10, le=1000)
    api_max_header_bytes: int = Field(16384, ge=1024, le=1024 * 1024)
    api_header_timeout_seconds: float = Field(10.0, gt=0)
    api_body_timeout_seconds: float = Field(10.0, gt=0)
    api_keepalive_timeout_seconds: float = Field(5.0, gt=0)
    api_max_connections: int = Field(1000, ge=1)
    api_backlog: int = Field(2048, ge=1)
    # accept() failures (out of file descriptors) are logged at most once per interval.
    api_accept_error_log_interval_seconds: float = Field(10.0, gt=0)

    @field_validator("api_trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        value = split_commas(value)
        if isinstance(value, list):
            for item in value:
                ipaddress.ip_network(str(item), strict=False)  # ValueError names nothing secret
        return value

    @field_validator("api_public_base_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return http_url(value)

    @property
    def is_development(self) -> bool:
        return self.api_environment in ("development", "test")

    @property
    def auto_migrate(self) -> bool:
        if self.api_auto_migrate is None:
            return self.api_environment == "development"
        return self.api_auto_migrate

    @property
    def docs_enabled(self) -> bool:
        return self.is_development if self.api_docs_enabled is None else self.api_docs_enabled
