"""Logging and OpenTelemetry export."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from bootstrap.settings._common import ConcernSettings


class ObservabilitySettings(ConcernSettings):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["console", "json"] | None = None

    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = "whatsapp-core"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value
