"""The kernel's public API for business modules: one declaration per module.

A module declares what it brings (entities and how they persist, queued and periodic
tasks, HTTP routers, a settings model with its own prefix, container bindings) and
``bootstrap`` composes a list of them. The WhatsApp conversation flow is declared the
same way; nothing in the kernel names a module.

``compose()`` checks the modules against each other and against the kernel, so a bad
declaration fails at start with a ``CompositionError`` naming the module and the culprit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from lagom import Container
from pydantic_settings import BaseSettings

from application.entities import EntitySpec
from application.tasks import PeriodicSpec, TaskSpec
from bootstrap.entity_checks import InvalidEntityDeclaration, check_entities

# Builds a module's routers from the composed container. Use cases and the caller's
# identity are asked for through ``container[Routing]``.
RouterFactory = Callable[[Container], Sequence[APIRouter]]
# Binds a module's own ports in the container, given its settings (None without a model).
Binder = Callable[[Container, Any], None]


class CompositionError(Exception):
    """Modules that cannot run together; the message names the module and the culprit."""


@dataclass(frozen=True, slots=True)
class Routing:
    """What a module's routers get from the kernel's HTTP edge (``container[Routing]``).

    ``use_case(UseCase)``: a FastAPI dependency giving the container's use case, resolved
    per request, in a span, and refused with SCHEMA_BEHIND while the schema is behind.
    ``authenticate``: a FastAPI dependency giving the caller's ``Principal`` from
    ``X-API-Key`` or a Bearer JWT (the internal API's credentials); 401 otherwise.
    """

    use_case: Callable[[type[Any]], Any]
    authenticate: Any


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


def settings_prefix(model: type[BaseSettings]) -> str:
    """A module settings model's environment prefix, upper-cased ('' when it has none)."""
    return str(model.model_config.get("env_prefix") or "").upper()


def compose(
    modules: Sequence[Module], *, kernel_env_names: Iterable[str] = ()
) -> Composition:
    """Check the modules against each other and the kernel, and compose them.

    ``kernel_env_names``: the kernel's own setting prefixes and variable names, which no
    module's settings prefix may cover or fall under.
    """
    _check_names(modules)
    _check_unique(modules, "task", lambda m: (spec.name for spec in m.tasks))
    _check_unique(modules, "periodic task", lambda m: (spec.name for spec in m.periodic))
    _check_unique(modules, "table", lambda m: (spec.table for spec in m.entities))
    _check_prefixes(modules, [name.upper() for name in kernel_env_names])
    try:
        check_entities((m.name, spec) for m in modules for spec in m.entities)
    except InvalidEntityDeclaration as error:
        raise CompositionError(str(error)) from error
    return Composition(tuple(modules))


def _check_names(modules: Sequence[Module]) -> None:
    seen: set[str] = set()
    for module in modules:
        if not isinstance(module, Module):
            raise CompositionError(f"{module!r} is not a Module")
        if not module.name or not module.name.isidentifier():
            raise CompositionError(f"module name {module.name!r} must be a Python identifier")
        if module.name in seen:
            raise CompositionError(f"module {module.name!r} is declared twice")
        seen.add(module.name)


def _check_unique(
    modules: Sequence[Module], what: str, names_of: Callable[[Module], Iterable[str]]
) -> None:
    owner: dict[str, str] = {}
    for module in modules:
        for name in names_of(module):
            if name in owner:
                first = owner[name]
                where = "twice" if first == module.name else f"already by module {first!r}"
                raise CompositionError(
                    f"module {module.name!r}: {what} {name!r} is registered {where}")
            owner[name] = module.name


def _overlap(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def _check_prefixes(modules: Sequence[Module], kernel: list[str]) -> None:
    owner: dict[str, str] = {}
    for module in modules:
        if module.settings is None:
            continue
        prefix = settings_prefix(module.settings)
        if not prefix:
            raise CompositionError(
                f"module {module.name!r}: settings {module.settings.__name__} has no env_prefix")
        clash = next((name for name in kernel if _overlap(prefix, name)), None)
        if clash:
            raise CompositionError(
                f"module {module.name!r}: settings prefix {prefix!r} is taken by the kernel "
                f"({clash})")
        other = next((p for p in owner if _overlap(prefix, p)), None)
        if other is not None:
            raise CompositionError(
                f"module {module.name!r}: settings prefix {prefix!r} is taken by module "
                f"{owner[other]!r} ({other})")
        owner[prefix] = module.name
