"""The kernel's public API for business modules: one declaration per module.

A module declares what it brings (entities and how they persist, queued and periodic
tasks, HTTP routers, a settings model with its own prefix, container bindings) and
``bootstrap`` composes a list of them. The WhatsApp conversation flow is declared the
same way; nothing in the kernel names a module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from lagom import Container
from pydantic_settings import BaseSettings

from application.entities import EntitySpec
from application.tasks import PeriodicSpec, TaskSpec

# Builds a module's routers from the composed container (use cases resolved per request).
RouterFactory = Callable[[Container], Sequence[APIRouter]]
# Binds a module's own ports in the container, given its settings (None without a model).
Binder = Callable[[Container, Any], None]


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    entities: Sequence[EntitySpec[Any]] = ()
    tasks: Sequence[TaskSpec[Any]] = ()
    periodic: Sequence[PeriodicSpec] = ()
    routers: RouterFactory | None = None
    # A pydantic-settings model with its own ``env_prefix``; read once at composition.
    settings: type[BaseSettings] | None = None
    bind: Binder | None = None


@dataclass(frozen=True, slots=True)
class Composition:
    """The modules a process runs, checked together once at start."""

    modules: tuple[Module, ...]

    @property
    def entities(self) -> tuple[EntitySpec[Any], ...]:
        return tuple(spec for module in self.modules for spec in module.entities)

    @property
    def tasks(self) -> dict[str, TaskSpec[Any]]:
        return {spec.name: spec for module in self.modules for spec in module.tasks}

    @property
    def periodic(self) -> tuple[PeriodicSpec, ...]:
        return tuple(spec for module in self.modules for spec in module.periodic)


def compose(modules: Sequence[Module]) -> Composition:
    """Check the modules against each other (names, tables, prefixes) and compose them."""
    return Composition(tuple(modules))
