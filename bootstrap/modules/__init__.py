"""The modules the kernel ships with, and loading a deployment's modules by import path.

Each module is declared through ``bootstrap.module``; ``APP_MODULES`` names the ones a
deployment runs (``package.module:ATTR``), so adding one changes no kernel file.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic_settings import BaseSettings

from bootstrap.module import Composition, Module, compose
from bootstrap.settings import (
    ENV_FILE,
    Settings,
    SettingsError,
    kernel_env_names,
    read_module_settings,
)


@dataclass(frozen=True, slots=True)
class Composed:
    """The checked composition and each module's settings, by module name."""

    composition: Composition
    settings: dict[str, BaseSettings]


def compose_for(settings: Settings, modules: Sequence[Module] | None = None) -> Composed:
    """Load (``modules``, else ``APP_MODULES``), check and compose the modules, and read
    each one's settings once. Fails with ``SettingsError`` or ``CompositionError``."""
    composition = compose(
        modules if modules is not None else load_modules(settings.app_modules),
        kernel_env_names=kernel_env_names(),
    )
    own = {module.name: read_module_settings(module.settings, ENV_FILE)
           for module in composition.modules if module.settings is not None}
    return Composed(composition, own)


def load_modules(paths: Sequence[str]) -> list[Module]:
    """The ``Module`` at each ``package.module:ATTR`` path; a bad one is a SettingsError."""
    return [_load(path) for path in paths]


def _load(path: str) -> Module:
    name, _, attr = path.partition(":")
    if not name or not attr:
        raise SettingsError(f"APP_MODULES: {path!r} is not a package.module:ATTR path")
    try:
        package = importlib.import_module(name)
    except ImportError as exc:
        raise SettingsError(f"APP_MODULES: cannot import {name!r} ({exc})") from None
    try:
        module = getattr(package, attr)
    except AttributeError:
        raise SettingsError(f"APP_MODULES: {name!r} has no attribute {attr!r}") from None
    if not isinstance(module, Module):
        raise SettingsError(
            f"APP_MODULES: {path!r} is a {type(module).__name__}, not a bootstrap.module.Module")
    return module
