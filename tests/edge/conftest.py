from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, fresh_postgres_database
from tests.edge.server import EdgeServer

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def edge_postgres_database(postgres_admin_dsn: str) -> Iterator[str]:
    """One fresh PostgreSQL database for the edge server; dropped afterwards."""
    with fresh_postgres_database(postgres_admin_dsn, "wta_edge") as dsn:
        yield dsn


@pytest.fixture(scope="session", params=BACKENDS)
def edge_server(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeServer]:
    """A real server per backend, shared by the edge tests (each compares row counts
    before and after, so they need no empty database)."""
    tmp: Path = tmp_path_factory.mktemp(f"edge-{request.param}")
    if request.param == "postgres":
        url = request.getfixturevalue("edge_postgres_database")
    else:
        url = f"sqlite:///{tmp / 'app.db'}"
    server = EdgeServer(tmp, free_port(), request.param, url)
    server.start()
    yield server
    server.stop()
