"""The one text rule for every stored string, the same on every backend.

Text is stored exactly as received (no trimming, no Unicode normalisation), provided it is
valid Unicode that every database can hold: NUL (U+0000) is refused, since PostgreSQL
cannot store it in text, and lone surrogates (U+D800..U+DFFF, which no valid UTF-8 can
carry) are refused. Each field also has a length bound in characters.
"""

from __future__ import annotations

import re

from domain.errors import InvalidText

# Twilio's WhatsApp bodies, and the internal API's, share this bound.
MAX_BODY_CHARS = 4096
# What the internal API and replies may send: split into parts of 1,600 on the way out.
MAX_OUTBOUND_BODY_CHARS = 16000

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


def check_text(value: str, field: str, max_chars: int) -> str:
    """``value`` unchanged if it obeys the rule; raises ``InvalidText`` naming ``field``."""
    if len(value) > max_chars:
        raise InvalidText(f"{field} is longer than {max_chars} characters")
    found = _FORBIDDEN.search(value)
    if found:
        what = "NUL" if found.group() == "\x00" else "a lone surrogate"
        raise InvalidText(f"{field} contains {what}, which is not allowed in text")
    return value
