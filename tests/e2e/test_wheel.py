"""The wheel, installed outside the repository, migrates and serves from an empty directory.

The package comes only from the wheel (asserted); its dependencies are this environment's,
made visible to the fresh virtualenv through a .pth file after its own site-packages, so
no index is needed and the test stays fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from tests.conftest import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PREFIXES = ("API_", "DATABASE_", "QUEUE_", "TWILIO_", "SUPABASE_", "LLM_", "WORKER_",
                    "CONVERSATION_", "LOG_", "OTEL_", "SECRET_KEY")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    site: Path

    @property
    def wta(self) -> str:
        return str(self.venv / "bin" / "wta")

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")


def _source_tree(target: Path) -> Path:
    """What a fresh clone holds (tracked plus new, unignored files): no build leftovers."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True, timeout=30,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    source = _source_tree(base / "src")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(base / "dist"), str(source)],
        check=True, capture_output=True, timeout=120,
    )
    [wheel] = (base / "dist").glob("whatsapp_core-*.whl")
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip())
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, timeout=120,
    )
    # The dependencies: this environment's site-packages, searched after the venv's own.
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return Installed(wheel, env_dir, site)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty


def env_for(port: int, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(PROJECT_PREFIXES) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({"API_ENVIRONMENT": "test", "API_PORT": str(port),
                "QUEUE_POLL_INTERVAL_SECONDS": "0.2", "PYTHONUNBUFFERED": "1", **values})
    return env


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def serve(installed: Installed, workdir: Path) -> Iterator[Callable[[dict[str, str]], Server]]:
    started: list[Server] = []

    def start(env: dict[str, str]) -> Server:
        log = workdir.parent / "serve.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([installed.wta, "serve", "--with-worker"], env=env,
                                    cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
        server = Server(proc, log)
        started.append(server)
        base = f"http://127.0.0.1:{env['API_PORT']}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the installed server never became ready\n{server.output()}")

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def test_the_wheel_carries_the_migrations_and_their_config(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert {"bootstrap/migrations/env.py", "bootstrap/migrations/script.py.mako",
            "bootstrap/migrations/alembic.ini"} <= names
    shipped = {n for n in names if n.startswith("bootstrap/migrations/versions/")}
    in_repo = {f"bootstrap/migrations/versions/{p.name}"
               for p in (ROOT / "bootstrap" / "migrations" / "versions").glob("*.py")}
    assert shipped == in_repo


def test_the_package_comes_from_the_wheel_not_the_repository(
    installed: Installed, workdir: Path
) -> None:
    code = "import bootstrap, adapters, domain, application; print(bootstrap.__file__)"
    result = run([installed.python, "-c", code], env_for(free_port()), workdir)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_relative_to(installed.site)
    config = run([installed.wta, "migrate", "--config"], env_for(free_port()), workdir)
    assert Path(config.stdout.strip()) == installed.site / "bootstrap/migrations/alembic.ini"


def test_embedded_defaults_migrate_serve_and_answer_a_signed_webhook(
    installed: Installed, workdir: Path, serve: Callable[[dict[str, str]], Server]
) -> None:
    env = env_for(free_port())
    migrated = run([installed.wta, "migrate"], env, workdir)
    assert migrated.returncode == 0, migrated.stderr
    assert (workdir / "var" / "app.db").is_file()  # the default path, under the empty dir
    server = serve(env)
    # `wta simulate` posts a Twilio-signed webhook and reads the reply back.
    result = run([installed.wta, "simulate", "hello from a wheel"], env, workdir)
    assert result.returncode == 0, result.stderr + server.output()
    assert "< Echo: hello from a wheel" in result.stdout


@pytest.mark.integration
def test_postgres_and_arq_through_plain_alembic_and_wta(
    installed: Installed, workdir: Path, serve: Callable[[dict[str, str]], Server],
    postgres_database: str, redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    parts = urlsplit(postgres_database)
    # The raw backend with a libpq key=value DSN: `alembic` itself must read it via settings.
    dsn = (f"host={parts.hostname} port={parts.port} user={parts.username} "
           f"dbname={parts.path.lstrip('/')}")
    env = env_for(free_port(), DATABASE_BACKEND="postgres", DATABASE_URL=dsn,
                  QUEUE_BACKEND="arq", QUEUE_REDIS_URL=redis_url)
    try:
        config = run([installed.wta, "migrate", "--config"], env, workdir).stdout.strip()
        alembic = run([installed.python, "-m", "alembic", "-c", config, "upgrade", "head"],
                      env, workdir)
        assert alembic.returncode == 0, alembic.stderr
        assert "Running upgrade" in alembic.stderr
        migrated = run([installed.wta, "migrate"], env, workdir)  # already at head: a no-op
        assert migrated.returncode == 0, migrated.stderr
        server = serve(env)
        result = run([installed.wta, "simulate", "hello over arq"], env, workdir)
        assert result.returncode == 0, result.stderr + server.output()
        assert "< Echo: hello over arq" in result.stdout
        assert list(workdir.iterdir()) == []  # nothing of the embedded defaults was used
    finally:
        client.flushdb()
        client.close()
