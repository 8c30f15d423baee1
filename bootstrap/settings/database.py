"""Persistence: the backend, its URL and pool, and the Supabase project."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from bootstrap.settings._common import ConcernSettings


class DatabaseSettings(ConcernSettings):
    database_backend: Literal["sqlalchemy", "postgres", "supabase", "memory"] = "sqlalchemy"
    database_url: str = "sqlite:///./var/app.db"
    database_pool_min_conn: int = Field(1, ge=0)
    database_pool_max_conn: int = Field(10, ge=1)
    database_pool_timeout_seconds: float = Field(10.0, gt=0)

    supabase_url: str | None = None
    supabase_key: SecretStr | None = None
    supabase_service_key: SecretStr | None = None
    supabase_db_schema: str = "public"
    supabase_timeout_seconds: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _supabase_is_configured(self) -> Self:
        if self.database_backend == "supabase" and not (
            self.supabase_url and (self.supabase_service_key or self.supabase_key)
        ):
            raise ValueError(
                "DATABASE_BACKEND=supabase needs SUPABASE_URL and SUPABASE_SERVICE_KEY "
                "(or SUPABASE_KEY)"
            )
        return self
