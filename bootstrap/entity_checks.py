"""Entity declarations checked together at composition, before anything opens.

A mistake here would otherwise surface as a confusing SQL error at the first write, or
as one module silently writing another's table. Each error names the module and the
culprit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from application.entities import ColumnType, EntitySpec


class InvalidEntityDeclaration(ValueError):
    """A module declared an entity the kernel cannot persist."""


def _check_one(module: str, spec: EntitySpec[Any]) -> None:
    where = f"module {module!r}, entity {spec.entity.__name__} (table {spec.table!r})"
    names = spec.column_names
    for required in ("id", "version"):
        if required not in names:
            raise InvalidEntityDeclaration(f"{where}: no {required!r} column")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidEntityDeclaration(f"{where}: columns declared twice: {duplicates}")
    known = set(names)
    for column in spec.columns:
        if column.type is ColumnType.STRING and not column.length:
            raise InvalidEntityDeclaration(f"{where}: STRING column {column.name!r} needs a length")
    for key in spec.unique:
        used = [*key.columns, *([key.where[0]] if key.where else [])]
        unknown = [c for c in used if c not in known]
        if unknown or not key.columns:
            raise InvalidEntityDeclaration(
                f"{where}: unique key {key.columns} names unknown columns {unknown}")
    for index in spec.indexes:
        unknown = [c for c in index.columns if c not in known]
        if unknown or not index.columns:
            raise InvalidEntityDeclaration(
                f"{where}: index {index.columns} names unknown columns {unknown}")
    if dataclasses.is_dataclass(spec.entity):
        # Memory and Supabase filter the unit's own rows by attribute: columns are fields.
        fields = {f.name for f in dataclasses.fields(spec.entity)}
        missing = [n for n in names if n not in fields]
        if missing:
            raise InvalidEntityDeclaration(f"{where}: columns {missing} are not fields of it")


def _claim(seen: dict[object, str], key: object, module: str, what: str) -> None:
    if key in seen:
        raise InvalidEntityDeclaration(
            f"module {module!r} declares {what}, already declared by module {seen[key]!r}")
    seen[key] = module


def check_entities(declared: Iterable[tuple[str, EntitySpec[Any]]]) -> None:
    """Refuse bad declarations: a spec without ``id``/``version``, a key or index on an
    unknown column, and two modules sharing a table, an entity type or a port."""
    tables: dict[object, str] = {}
    entities: dict[object, str] = {}
    ports: dict[object, str] = {}
    for module, spec in declared:
        _check_one(module, spec)
        _claim(tables, spec.table, module, f"table {spec.table!r}")
        _claim(entities, spec.entity, module, f"entity {spec.entity.__name__}")
        if spec.port is not None:
            _claim(ports, spec.port, module, f"port {spec.port.__name__}")
