"""The layering rules and the settings documentation, checked by the suite itself."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.settings import Settings, SettingsError, load_settings
from bootstrap.settings.identity import IdentitySettings

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 7 kept, 0 broken." in result.stdout


def _imported_names(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_the_kernel_never_imports_the_tests_or_a_module_by_name() -> None:
    """Modules are named in settings (APP_MODULES) only. Function-level imports count too,
    which lint-imports also sees; this names the file and catches ``from bootstrap.modules
    import whatsapp`` in a kernel file outside ``bootstrap/modules``."""
    modules_dir = ROOT / "bootstrap" / "modules"
    # The module packages the kernel ships (bootstrap.modules.whatsapp...), not the loader.
    shipped = {p.stem for p in modules_dir.glob("*.py") if p.stem != "__init__"}
    shipped |= {p.name for p in modules_dir.iterdir() if (p / "__init__.py").is_file()}
    assert "whatsapp" in shipped
    named = ("tests", *(f"bootstrap.modules.{name}" for name in shipped))
    offenders = []
    for layer in ("domain", "application", "adapters", "bootstrap"):
        for path in (ROOT / layer).rglob("*.py"):
            if path.is_relative_to(modules_dir):
                continue
            offenders += [f"{path.relative_to(ROOT)}: {name}" for name in _imported_names(path)
                          if any(name == n or name.startswith(n + ".") for n in named)]
    assert offenders == []


def test_domain_and_application_import_only_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__", "domain", "application"}
    offenders = []
    for layer in ("domain", "application"):
        for path in (ROOT / layer).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.module
                         and node.level == 0 else [])
                offenders += [f"{path}: {n}" for n in names if n.split(".")[0] not in allowed]
    assert offenders == []


def test_env_example_documents_every_setting_and_loads() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    fields = {name.upper() for name in Settings.model_fields}
    # The shipped identity module's own settings (its prefix) are documented there too.
    fields |= {"IDENTITY_" + name.upper() for name in IdentitySettings.model_fields}
    assert fields - documented == set(), "settings missing from .env.example"
    assert documented - fields == set(), ".env.example names settings that do not exist"
    settings = load_settings(env_file=ROOT / ".env.example")
    assert settings == Settings(_env_file=None)  # type: ignore[call-arg]


def test_invalid_values_name_the_variable_and_hide_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_PORT", "secret-looking-70000")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert "API_PORT" in str(info.value)
    assert "secret-looking" not in str(info.value)


def test_unknown_setting_with_a_project_prefix_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DATABASE_URLL=sqlite:///x.db\n")
    with pytest.raises(SettingsError, match="DATABASE_URLL"):
        load_settings(env_file=env_file)


def test_queue_aliases_map_to_arq() -> None:
    assert Settings(_env_file=None, queue_backend="bullmq").queue_backend == "arq"  # type: ignore[call-arg]
    assert Settings(_env_file=None, queue_backend="Redis").queue_backend == "arq"  # type: ignore[call-arg]


def test_production_refuses_insecure_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_ENVIRONMENT", "production")
    monkeypatch.setenv("TWILIO_VALIDATE_SIGNATURE", "false")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    message = str(info.value)
    assert "SECRET_KEY" in message and "TWILIO_VALIDATE_SIGNATURE" in message
    assert "TWILIO_AUTH_TOKEN" in message and "API_PUBLIC_BASE_URL" in message
    monkeypatch.setenv("SECRET_KEY", "a-real-secret-of-at-least-32-bytes")
    monkeypatch.setenv("TWILIO_VALIDATE_SIGNATURE", "true")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    monkeypatch.setenv("API_PUBLIC_BASE_URL", "https://bot.example.com")
    settings = load_settings(env_file=None)
    assert not settings.docs_enabled


def test_importing_every_module_has_no_side_effects(tmp_path: Path) -> None:
    # Import everything in a clean process run from an empty directory: no file appears.
    code = (
        "import importlib, pkgutil, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "for pkg in ('domain', 'application', 'adapters', 'bootstrap'):\n"
        "    mod = importlib.import_module(pkg)\n"
        "    for info in pkgutil.walk_packages(mod.__path__, pkg + '.'):\n"
        "        importlib.import_module(info.name)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
