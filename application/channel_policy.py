"""The WhatsApp channel's sending rules: the 24-hour window and its fallback template."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """``window``: how long after the contact's last message free-form text may be sent.
    ``fallback_content_sid``: the template a reply uses once the window closed (None: the
    reply fails with ``WINDOW_CLOSED``)."""

    window: timedelta = timedelta(hours=24)
    fallback_content_sid: str | None = None
