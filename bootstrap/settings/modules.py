"""Which modules a deployment runs, and reading a module's own settings model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, TypeVar

from dotenv import dotenv_values
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode

from bootstrap.settings._common import ConcernSettings, split_commas
from bootstrap.settings.errors import SettingsError, describe

DEFAULT_MODULES = ("bootstrap.modules.whatsapp:MODULE",)

S = TypeVar("S", bound=BaseSettings)


class ModuleSettings(ConcernSettings):
    # `package.module:ATTR` import paths of the modules every entry point composes.
    app_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_MODULES))

    @field_validator("app_modules", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        value = split_commas(value)
        if isinstance(value, list):
            for item in value:
                module, _, attr = str(item).partition(":")
                if not module or not attr:
                    raise ValueError(f"{item!r} is not a package.module:ATTR path")
        return value


def env_names(env_file: str | Path | None) -> list[str]:
    """Variable names from the environment and ``env_file`` (when it exists)."""
    names = list(os.environ)
    if env_file is not None and Path(env_file).is_file():
        names += [key for key in dotenv_values(env_file) if key]
    return names


def read_module_settings(model: type[S], env_file: str | Path | None = ".env") -> S:
    """A module's settings, refusing unknown variables under its prefix like the kernel's."""
    prefix = str(model.model_config.get("env_prefix") or "").upper()
    known = {prefix + name.upper() for name in model.model_fields}
    unknown = sorted({key for key in env_names(env_file)
                      if prefix and key.upper().startswith(prefix) and key.upper() not in known})
    if unknown:
        raise SettingsError("unknown setting(s): " + ", ".join(unknown)
                            + f" (the prefix {prefix} is {model.__name__}'s)")
    try:
        return model(_env_file=env_file)
    except ValidationError as exc:
        raise SettingsError(describe(exc, prefix)) from None
