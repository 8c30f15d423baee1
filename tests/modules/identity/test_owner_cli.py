"""``wta owner``: add, list, show, update, disable, rotate-token and rotate-key, tokens
read from standard input and never printed."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from adapters.identity.fernet import FernetTokenCipher
from bootstrap.cli import main

SID = "AC" + "e" * 32
TOKEN = "token-of-owner-e-0123456789abcdef"  # test-only value


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "app.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("QUEUE_SQLITE_DB_PATH", str(tmp_path / "queue.db"))
    monkeypatch.setenv("API_ENVIRONMENT", "test")
    monkeypatch.setenv("APP_MODULES",
                       "bootstrap.modules.whatsapp:MODULE,bootstrap.modules.identity:MODULE")
    assert main(["migrate"]) == 0
    return db


def wta(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str,
        stdin: str = "") -> tuple[int, str, str]:
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["owner", *args])
    out, err = capsys.readouterr()
    return code, out, err


def sealed_tokens(db: Path) -> list[str]:
    with sqlite3.connect(db) as connection:
        return [row[0] for row in connection.execute("SELECT sealed_token FROM identity_owners")]


def test_owner_commands_end_to_end(env: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("IDENTITY_TOKEN_KEYS", old_key)
    code, out, err = wta(monkeypatch, capsys, "add", "--name", "Shop", "--account-sid", SID,
                         "--number", "+14155550505", stdin=TOKEN + "\n")
    assert code == 0, err
    added = json.loads(out)
    assert (added["id"], added["numbers"]) == (SID, ["+14155550505"])
    assert TOKEN not in out + err
    code, out, _ = wta(monkeypatch, capsys, "plan", "gold", "--name", "Gold", "--quota", "5")
    assert code == 0
    code, out, _ = wta(monkeypatch, capsys, "update", SID, "--plan", "gold", "--answers", "off",
                       "--add-number", "whatsapp:+14155550606")
    shown = json.loads(out)
    assert (shown["plan_id"], shown["answers"]) == ("gold", False)
    assert shown["numbers"] == ["+14155550505", "+14155550606"]
    assert shown["vision"] is None  # the deployment's LLM_VISION until the owner says
    for choice, stored in (("on", True), ("off", False), ("default", None)):
        code, out, _ = wta(monkeypatch, capsys, "update", SID, "--vision", choice)
        assert (code, json.loads(out)["vision"]) == (0, stored)
    code, _, err = wta(monkeypatch, capsys, "update", SID, "--plan", "nope")
    assert (code, "no plan nope" in err) == (1, True)
    code, out, _ = wta(monkeypatch, capsys, "rotate-token", SID, stdin="new-" + TOKEN)
    assert code == 0 and TOKEN not in out
    [sealed] = sealed_tokens(env)
    assert FernetTokenCipher([old_key]).open(sealed) == "new-" + TOKEN
    # Key rotation: the new key first, reseal, then the old key can go.
    monkeypatch.setenv("IDENTITY_TOKEN_KEYS", f"{new_key},{old_key}")
    code, out, _ = wta(monkeypatch, capsys, "rotate-key")
    assert (code, out.strip()) == (0, "resealed 1 token(s)")
    [sealed] = sealed_tokens(env)
    assert FernetTokenCipher([new_key]).open(sealed) == "new-" + TOKEN
    code, out, _ = wta(monkeypatch, capsys, "disable", SID)
    assert json.loads(out)["enabled"] is False
    code, out, _ = wta(monkeypatch, capsys, "list")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [SID]
    code, _, err = wta(monkeypatch, capsys, "show", "nobody")
    assert code == 1 and "no owner nobody" in err


def test_owner_commands_need_the_identity_module(
        env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("APP_MODULES", "bootstrap.modules.whatsapp:MODULE")
    code, _, err = wta(monkeypatch, capsys, "list")
    assert code == 2 and "identity" in err
