from __future__ import annotations

from typing import Protocol


class TextSplitter(Protocol):
    """Cuts a body into the parts the channel accepts, in order; joined, they give the
    body back. An empty body is one empty part (a media-only message is one request)."""

    def split(self, text: str) -> list[str]: ...
