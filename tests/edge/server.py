"""A real ``wta serve`` process for the edge tests, on SQLite or on PostgreSQL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

from bootstrap.settings import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, DEV_PHONE_NUMBER

ROOT = Path(__file__).resolve().parents[2]
INBOUND = "/channels/twilio/v1/webhooks/inbound"
STATUS = "/channels/twilio/v1/webhooks/status"
CONTACT = "whatsapp:+5511966665555"
SECRET_KEY = "edge-tests-secret-key-of-at-least-32-bytes"
_OWN = ("API_", "DATABASE_", "QUEUE_", "TWILIO_", "SUPABASE_", "LLM_", "CONVERSATION_",
        "LOG_", "WORKER_", "SECRET_KEY", "ALGORITHM", "ACCESS_TOKEN_", "OTEL_")


def inbound(sid: str, body: str = "hello", **extra: str) -> dict[str, str]:
    """What Twilio posts for one WhatsApp text, to the development owner."""
    return {"MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid,
            "AccountSid": DEV_ACCOUNT_SID, "MessagingServiceSid": "", "From": CONTACT,
            "To": DEV_PHONE_NUMBER, "Body": body, "NumMedia": "0", "NumSegments": "1",
            "ProfileName": "Edge", "WaId": "5511966665555", "SmsStatus": "received",
            "ApiVersion": "2010-04-01"} | extra


def sign(url: str, params: Any) -> str:
    return str(RequestValidator(DEV_AUTH_TOKEN).compute_signature(url, params))


class EdgeServer:
    """``wta serve`` (no worker) on 127.0.0.1; the database is read directly for counts."""

    def __init__(self, tmp: Path, port: int, backend: str, database_url: str,
                 extra_env: dict[str, str] | None = None,
                 preexec: Callable[[], None] | None = None) -> None:
        self.tmp = tmp
        self.port = port
        self.backend = backend
        self.database_url = database_url
        self.base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN)}
        env.update({
            "API_ENVIRONMENT": "test", "API_PORT": str(port), "PYTHONUNBUFFERED": "1",
            "DATABASE_BACKEND": "postgres" if backend == "postgres" else "sqlalchemy",
            "DATABASE_URL": database_url, "QUEUE_SQLITE_DB_PATH": str(tmp / "queue.db"),
            "LOG_FORMAT": "json", "SECRET_KEY": SECRET_KEY,
        } | (extra_env or {}))
        self.env = env
        self.preexec = preexec
        self.log_path = tmp / f"server-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        migrate = subprocess.run([sys.executable, "-m", "bootstrap.cli", "migrate"], env=self.env,
                                 cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
        assert migrate.returncode == 0, migrate.stderr
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bootstrap.cli", "serve"], env=self.env, cwd=ROOT,
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=self.preexec)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log()
            time.sleep(0.1)
        raise AssertionError(f"server never became ready\n{self.log()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def rows(self) -> tuple[int, int]:
        """(messages, conversations) stored."""
        query = ("SELECT (SELECT count(*) FROM messages), "
                 "(SELECT count(*) FROM conversations)")
        if self.backend == "postgres":
            import psycopg2

            with psycopg2.connect(self.database_url) as conn, conn.cursor() as cur:
                cur.execute(query)
                row = cur.fetchone()
            conn.close()
        else:
            path = self.database_url.removeprefix("sqlite:///")
            with sqlite3.connect(path) as conn:
                row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def auth(self) -> dict[str, str]:
        """A Bearer token of the default owner, for the internal API."""
        from datetime import timedelta

        from adapters.fastapi.security import TokenSettings, create_access_token

        token = create_access_token(DEV_ACCOUNT_SID, TokenSettings(SECRET_KEY),
                                    expires_in=timedelta(minutes=30))
        return {"Authorization": f"Bearer {token}"}

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def signed_form(self, client: httpx.Client, path: str, params: dict[str, str],
                    **kwargs: Any) -> httpx.Response:
        body = urlencode(params)
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": sign(self.url(path), params)}
        return client.post(self.url(path), content=body.encode(), headers=headers, **kwargs)
