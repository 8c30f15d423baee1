"""Connection strings: a libpq DSN or a postgresql:// URL in, what each consumer needs out."""

from __future__ import annotations

import re
from urllib.parse import quote

from psycopg2.extensions import parse_dsn

# "postgresql+asyncpg://", "postgres+psycopg2://": a SQLAlchemy driver suffix libpq rejects.
_DRIVER_SUFFIX = re.compile(r"^(postgres(?:ql)?)\+[a-z0-9_]+://")


def libpq_dsn(url: str) -> str:
    """What ``psycopg2.connect`` takes: the DSN as given, minus a SQLAlchemy driver suffix."""
    return _DRIVER_SUFFIX.sub(r"\1://", url.strip(), count=1)


def sqlalchemy_url(url: str) -> str:
    """The same database as a ``postgresql+psycopg2://`` URL (for Alembic)."""
    dsn = libpq_dsn(url)
    for scheme in ("postgresql://", "postgres://"):
        if dsn.startswith(scheme):
            return "postgresql+psycopg2://" + dsn[len(scheme):]
    params = parse_dsn(dsn)
    user = quote(params.pop("user", ""), safe="")
    password = params.pop("password", None)
    host = params.pop("host", "")
    port = params.pop("port", None)
    database = quote(params.pop("dbname", ""), safe="")
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    # A socket directory is not a host name: libpq takes it as the ?host= parameter.
    if host.startswith("/"):
        params["host"], host = host, ""
    location = f"{host}:{port}" if port and host else host
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
    if port and not host:
        query = "&".join(filter(None, [query, f"port={quote(port, safe='')}"]))
    return f"postgresql+psycopg2://{auth}{location}/{database}" + (f"?{query}" if query else "")
