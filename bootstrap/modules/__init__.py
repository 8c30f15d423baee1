"""The modules the kernel ships with. Each is declared through ``bootstrap.module``."""

from __future__ import annotations

from bootstrap.module import Module


def default_modules() -> list[Module]:
    """The modules a process composes when its caller names none."""
    from bootstrap.modules.whatsapp import MODULE as WHATSAPP

    return [WHATSAPP]
