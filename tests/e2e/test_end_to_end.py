"""End to end over real sockets: uvicorn, worker processes, the fake Twilio REST server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bootstrap.settings import Settings
from bootstrap.simulate import inbound_params, sign
from tests.conftest import free_port
from tests.fakes.fake_twilio import FakeTwilioServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
WTA = [sys.executable, "-m", "bootstrap.cli"]
CONTACT = "whatsapp:+5511977776666"
OUR_NUMBER = "whatsapp:+14155238886"
CLEAN_UVICORN_EXIT = (0, -signal.SIGTERM)


class Processes:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: list[tuple[subprocess.Popen[bytes], Path]] = []

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*WTA, *args], env=self.env, cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([*WTA, *args], env=self.env, cwd=ROOT, stdout=out,
                                    stderr=subprocess.STDOUT)
        self.running.append((proc, log))
        return proc

    def output(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')}"
                         for _, log in self.running)

    def stop_all(self) -> list[int]:
        codes = []
        for proc, _ in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.running:
            try:
                codes.append(proc.wait(timeout=30))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        return codes


def wait_ready(base_url: str, procs: Processes, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server never became ready\n{procs.output()}")


def base_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("API_", "DATABASE_", "QUEUE_", "TWILIO_", "LLM_", "WORKER_"))}
    env.update({
        "API_ENVIRONMENT": "test",
        "API_PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "QUEUE_SQLITE_DB_PATH": str(tmp_path / "queue.db"),
        "QUEUE_POLL_INTERVAL_SECONDS": "0.2",
        "TWILIO_PHONE_NUMBER": OUR_NUMBER,
        "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture
def twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer() as server:
        yield server


def test_signed_webhook_leads_to_exactly_one_twilio_send(
    tmp_path: Path, twilio: FakeTwilioServer
) -> None:
    port = free_port()
    env = base_env(tmp_path, port) | {
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_API_BASE_URL": twilio.base_url,
    }
    procs = Processes(env, tmp_path)
    migrated = procs.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    procs.start("api", "serve")
    procs.start("worker", "worker")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, procs)
        settings = Settings(_env_file=None, twilio_account_sid=twilio.account_sid,  # type: ignore[call-arg]
                            twilio_auth_token=twilio.auth_token, twilio_phone_number=OUR_NUMBER)
        url = f"{base}/channels/twilio/v1/webhooks/inbound"
        params = inbound_params(settings, "hello", CONTACT, "SM" + "e" * 32)
        headers = {"X-Twilio-Signature": sign(settings, url, params)}
        response = httpx.post(url, data=params, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        # Twilio retries the same webhook: still one reply.
        assert httpx.post(url, data=params, headers=headers, timeout=10).status_code == 200
        [sent] = twilio.wait_for_sends(1, timeout=15)
        assert sent.body == "Echo: hello"
        assert sent.to == CONTACT and sent.from_ == OUR_NUMBER
        assert sent.account_sid == twilio.account_sid
        time.sleep(1.0)  # room for a wrongly doubled job to show up
        assert len(twilio.sent) == 1, procs.output()
    finally:
        codes = procs.stop_all()
    # uvicorn re-raises SIGTERM after a clean shutdown, so it exits "killed by SIGTERM".
    assert codes[0] in CLEAN_UVICORN_EXIT and codes[1] == 0, procs.output()
    assert "Application shutdown complete" in procs.output()


def test_newcomer_path_serve_with_worker_and_simulate(tmp_path: Path) -> None:
    port = free_port()
    procs = Processes(base_env(tmp_path, port), tmp_path)
    assert procs.run("migrate").returncode == 0
    procs.start("api", "serve", "--with-worker")
    try:
        wait_ready(f"http://127.0.0.1:{port}", procs)
        result = procs.run("simulate", "hello", timeout=30)
        assert result.returncode == 0, result.stderr + procs.output()
        assert "< Echo: hello" in result.stdout
    finally:
        codes = procs.stop_all()
    assert codes[0] in CLEAN_UVICORN_EXIT, procs.output()


def test_simulate_against_a_server_that_is_not_running_says_so(tmp_path: Path) -> None:
    procs = Processes(base_env(tmp_path, free_port()), tmp_path)
    result = procs.run("simulate", "hello", timeout=30)
    assert result.returncode == 1
    assert "cannot reach" in result.stderr


def test_invalid_setting_fails_fast_naming_the_variable(tmp_path: Path) -> None:
    procs = Processes(base_env(tmp_path, free_port()) | {"QUEUE_MAX_ATTEMPTS": "zero"}, tmp_path)
    result = procs.run("migrate")
    assert result.returncode == 2
    assert "QUEUE_MAX_ATTEMPTS" in result.stderr
    typo = Processes(base_env(tmp_path, free_port()) | {"QUEUE_BAKEND": "sqlite"}, tmp_path)
    result = typo.run("migrate")
    assert result.returncode == 2 and "QUEUE_BAKEND" in result.stderr
