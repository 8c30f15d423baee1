"""Settings errors: every offending variable named, no rejected value echoed."""

from __future__ import annotations

from pydantic import ValidationError


class SettingsError(Exception):
    """Settings could not be loaded; the message names each offending variable."""


def describe(exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper()
        # Never echo the rejected value: it may be a secret.
        lines.append(f"{prefix + name if name else 'settings'}: {error['msg']}")
    return "invalid settings:\n  " + "\n  ".join(lines)
