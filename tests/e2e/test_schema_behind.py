"""An API started on an unmigrated database says so, and becomes ready once migrated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bootstrap.settings import Settings
from bootstrap.simulate import inbound_params, sign
from tests.conftest import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
WTA = [sys.executable, "-m", "bootstrap.cli"]
INBOUND = "/channels/twilio/v1/webhooks/inbound"
PREFIXES = ("API_", "DATABASE_", "QUEUE_", "TWILIO_", "LLM_", "WORKER_", "SUPABASE_")

Start = Callable[..., tuple[str, Callable[[], str]]]


def env_for(tmp_path: Path, port: int, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES)}
    env.update({"API_ENVIRONMENT": "test", "API_PORT": str(port), "PYTHONPATH": str(ROOT),
                "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
                "QUEUE_SQLITE_DB_PATH": str(tmp_path / "queue.db"), "PYTHONUNBUFFERED": "1",
                **values})
    return env


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    procs: list[subprocess.Popen[bytes]] = []

    def launch(env: dict[str, str]) -> tuple[str, Callable[[], str]]:
        log = tmp_path / f"serve-{len(procs)}.log"
        with log.open("wb") as out:
            procs.append(subprocess.Popen([*WTA, "serve"], env=env, cwd=tmp_path, stdout=out,
                                          stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{env['API_PORT']}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/health/live", timeout=1)
                return base, lambda: log.read_text(errors="replace")
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(log.read_text(errors="replace"))

    yield launch
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def post_signed(base: str, sid: str) -> httpx.Response:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    params = inbound_params(settings, "hello", "whatsapp:+5511977776666", sid)
    url = f"{base}{INBOUND}"
    return httpx.post(url, data=params, headers={"X-Twilio-Signature": sign(settings, url, params)},
                      timeout=10)


def ready_within(base: str, seconds: float) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        response = httpx.get(f"{base}/health/ready", timeout=5)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        return {"DATABASE_BACKEND": "postgres", "DATABASE_URL": url}
    return {}


def test_unmigrated_database_is_named_then_ready_after_migrate_without_restart(
    tmp_path: Path, start: Start, database: dict[str, str]
) -> None:
    env = env_for(tmp_path, free_port(), **database)
    base, output = start(env)

    ready = httpx.get(f"{base}/health/ready", timeout=5)
    assert ready.status_code == 503
    assert ready.json()["checks"]["schema"] == "behind (run wta migrate)"
    assert ready.json()["checks"]["database"] == "ok"  # reachable: not an outage
    refused = post_signed(base, "SM" + "1" * 32)
    assert refused.status_code == 503
    assert refused.json()["code"] == "SCHEMA_BEHIND"
    assert "wta migrate" in refused.json()["detail"]
    # The guard stands behind the signature check: a forged request is still refused as such.
    forged = httpx.post(f"{base}{INBOUND}", data={"MessageSid": "SM" + "2" * 32},
                        headers={"X-Twilio-Signature": "forged"}, timeout=10)
    assert forged.status_code == 403
    assert "schema is behind this code: run `wta migrate`" in output()

    migrated = subprocess.run([*WTA, "migrate"], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, check=False)
    assert migrated.returncode == 0, migrated.stderr

    ready = ready_within(base, 10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["schema"] == "ok"
    accepted = post_signed(base, "SM" + "1" * 32)  # Twilio's retry of the refused message
    assert accepted.status_code == 200, accepted.text + output()


def test_auto_migrate_makes_a_single_node_ready_on_its_own(tmp_path: Path, start: Start) -> None:
    base, output = start(env_for(tmp_path, free_port(), API_AUTO_MIGRATE="true"))
    ready = ready_within(base, 10)
    assert ready.status_code == 200, ready.text + output()
    assert post_signed(base, "SM" + "3" * 32).status_code == 200
    assert "API_AUTO_MIGRATE: the database schema was migrated to head" in output()


def test_a_worker_started_on_an_unmigrated_database_says_so(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*WTA, "worker"], env=env_for(tmp_path, free_port()),
                                cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "the database schema" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert "schema is behind this code: run `wta migrate`" in log.read_text()
