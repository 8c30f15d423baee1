"""The identity module's settings (prefix ``IDENTITY_``), read only when it is composed."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class IdentitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore",
                                      case_sensitive=False)

    # Fernet keys, comma-separated, newest first: the first seals, every one opens.
    # Unset: one key derived from SECRET_KEY (refused in production).
    token_keys: SecretStr | None = None
    # How often each process checks whether owners changed (the cache's staleness bound).
    refresh_seconds: float = Field(1.0, gt=0, le=60)
    # The admin API's X-Admin-Key; unset: no admin API.
    admin_api_key: SecretStr | None = Field(None, min_length=16)

    def keys(self) -> list[str]:
        raw = self.token_keys.get_secret_value() if self.token_keys else ""
        return [key.strip() for key in raw.split(",") if key.strip()]
