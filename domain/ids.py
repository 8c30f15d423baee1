"""ULID identifiers: 48-bit millisecond timestamp + 80 random bits, Crockford base32.

Lexicographic order of the text equals creation order (to the millisecond), which the
repositories rely on for keyset pagination.
"""

from __future__ import annotations

import os
import re
import time

from domain.errors import InvalidIdentifier

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
_MAX_TIMESTAMP = (1 << 48) - 1


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_ulid(timestamp_ms: int | None = None, randomness: bytes | None = None) -> str:
    """A new ULID; both parts can be given for deterministic tests."""
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    if not 0 <= ts <= _MAX_TIMESTAMP:
        raise InvalidIdentifier(f"ULID timestamp out of range: {ts}")
    rnd = os.urandom(10) if randomness is None else randomness
    if len(rnd) != 10:
        raise InvalidIdentifier("ULID randomness must be 10 bytes")
    return _encode((ts << 80) | int.from_bytes(rnd, "big"), 26)


def parse_ulid(text: str) -> str:
    """Validate and normalise (upper-case) a ULID string."""
    candidate = text.strip().upper() if isinstance(text, str) else ""
    if not _ULID_RE.match(candidate):
        raise InvalidIdentifier(f"not a ULID: {text!r}")
    return candidate


def ulid_timestamp_ms(ulid: str) -> int:
    value = 0
    for ch in parse_ulid(ulid)[:10]:
        value = (value << 5) | _ALPHABET.index(ch)
    return value
