"""Standard-library logging set up once from settings."""

from __future__ import annotations

import logging

from bootstrap.settings import Settings


def configure_logging(settings: Settings) -> None:
    root = logging.getLogger()
    root.setLevel(settings.log_level)
    if not any(getattr(h, "_wta", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler._wta = True  # type: ignore[attr-defined]
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        )
        root.addHandler(handler)
