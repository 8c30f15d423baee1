"""A WhatsApp template send (Twilio Content API): ``ContentSid`` plus its variables.

Kept in the message's ``metadata["template"]``; templates may be sent outside the
24-hour window, free-form text may not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import DomainError

KEY = "template"
_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
# WhatsApp template placeholders are short ("{{1}}" = a name, a date, a code).
MAX_VARIABLES = 10
MAX_VARIABLE_NAME_CHARS = 32
MAX_VARIABLE_CHARS = 256


class InvalidTemplate(DomainError):
    code = "INVALID_TEMPLATE"


@dataclass(frozen=True, slots=True)
class Template:
    content_sid: str
    variables: tuple[tuple[str, str], ...] = ()
    fallback: bool = False  # chosen by the window rule, not by the caller

    def __post_init__(self) -> None:
        if not _CONTENT_SID.match(self.content_sid):
            raise InvalidTemplate("content_sid must be 'HX' followed by 32 hex digits")
        if len(self.variables) > MAX_VARIABLES:
            raise InvalidTemplate(f"at most {MAX_VARIABLES} template variables")
        for key, value in self.variables:
            if not key or len(key) > MAX_VARIABLE_NAME_CHARS or len(value) > MAX_VARIABLE_CHARS:
                raise InvalidTemplate(
                    f"template variable names are 1-{MAX_VARIABLE_NAME_CHARS} characters and "
                    f"values at most {MAX_VARIABLE_CHARS}")

    def to_metadata(self) -> dict[str, Any]:
        return {KEY: {"content_sid": self.content_sid, "variables": dict(self.variables),
                      "fallback": self.fallback}}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Template | None:
        raw = metadata.get(KEY)
        if not isinstance(raw, Mapping) or not isinstance(raw.get("content_sid"), str):
            return None
        variables = raw.get("variables") or {}
        pairs = tuple((str(k), str(v)) for k, v in dict(variables).items())
        return cls(raw["content_sid"], pairs, bool(raw.get("fallback", False)))
