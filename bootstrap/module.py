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
