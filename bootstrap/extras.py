"""Each backend's optional packages (the package's extras), checked before anything starts.

A backend chosen in the settings whose extra is not installed fails at start with the
``pip install`` line to run, instead of an ImportError from deep inside the container.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bootstrap.settings import Settings, SettingsError

DISTRIBUTION = "whatsapp-core"


@dataclass(frozen=True)
class Need:
    reason: str  # the setting that asks for it, e.g. "QUEUE_BACKEND=arq"
    extra: str
    modules: tuple[str, ...]  # importable names that extra installs


class MissingExtra(SettingsError):
    """A chosen backend's packages are not installed; the message names the fix."""


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql"))


def needs(settings: Settings) -> list[Need]:
    """What the settings' backends import, by the extra that installs it."""
    found: list[Need] = []
    database = settings.database_backend
    if database == "postgres":
        found.append(Need("DATABASE_BACKEND=postgres", "postgres", ("psycopg2",)))
    elif database == "supabase":
        found.append(Need("DATABASE_BACKEND=supabase", "supabase", ("supabase", "psycopg2")))
    elif database == "sqlalchemy" and _is_postgres(settings.database_url):
        # asyncpg for the app, psycopg2 for the migrations.
        found.append(Need("a postgresql DATABASE_URL", "postgres", ("asyncpg", "psycopg2")))
    if settings.queue_backend == "arq":
        found.append(Need(f"QUEUE_BACKEND={settings.queue_backend_alias or 'arq'}", "redis",
                          ("arq",)))
    elif settings.queue_backend == "sqs":
        found.append(Need("QUEUE_BACKEND=sqs", "sqs", ("aiobotocore",)))
    if settings.otel_exporter_otlp_endpoint:
        found.append(Need("OTEL_EXPORTER_OTLP_ENDPOINT", "otel",
                          ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")))
    return found


def _installed(module: str, find_spec: Callable[[str], Any]) -> bool:
    try:
        return find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def check_extras(
    settings: Settings, find_spec: Callable[[str], Any] = importlib.util.find_spec
) -> None:
    """Raise ``MissingExtra`` naming every missing extra and one command installing them."""
    missing = [(need, [m for m in need.modules if not _installed(m, find_spec)])
               for need in needs(settings)]
    missing = [(need, modules) for need, modules in missing if modules]
    if not missing:
        return
    extras = sorted({need.extra for need, _ in missing})
    lines = [f"{need.reason} needs the '{need.extra}' extra ({', '.join(modules)} not installed)"
             for need, modules in missing]
    command = f"pip install '{DISTRIBUTION}[{','.join(extras)}]'"
    raise MissingExtra("\n  ".join([*lines, f"install it with: {command}"]))
