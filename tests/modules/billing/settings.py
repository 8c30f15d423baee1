"""The billing module's own settings, under its own prefix (``BILLING_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore",
                                      case_sensitive=False)

    # ISO 4217 code every amount of this deployment is in.
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
