"""Splitting a long text into parts Twilio accepts (1,600 characters each).

Cuts prefer, in order: a paragraph break, a sentence end, a word boundary; failing all
three, the last grapheme boundary that fits. A cut never falls inside a grapheme cluster
(an emoji with its modifiers, a letter with its combining marks, CR LF), so no part shows
a broken character. Whitespace stays at the end of the part before the cut: joining the
parts gives the text back exactly.

Length is counted in UTF-16 code units, which is never less than the count in code
points: a part within the limit by this count is within it however Twilio counts.

``regex`` is used for its ``\\X`` (extended grapheme clusters, UAX #29), which the
standard library lacks; that is why this lives in an adapter, behind ``TextSplitter``.
"""

from __future__ import annotations

import regex

TWILIO_MAX_PART_CHARS = 1600

_GRAPHEME = regex.compile(r"\X")
# A blank line (possibly holding spaces) and the whitespace after it.
_PARAGRAPH = regex.compile(r"\n[^\S\n]*\n\s*")
# A sentence end, closing quotes or brackets, then whitespace.
_SENTENCE = regex.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*\s+")
_WORD = regex.compile(r"\s+")


class GraphemeTextSplitter:
    """``TextSplitter`` for Twilio: parts of at most ``limit`` UTF-16 units."""

    def __init__(self, limit: int = TWILIO_MAX_PART_CHARS) -> None:
        self._limit = limit

    def split(self, text: str) -> list[str]:
        return split_text(text, self._limit)


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TWILIO_MAX_PART_CHARS) -> list[str]:
    """The parts of ``text``, in order, each at most ``limit`` UTF-16 units.

    An empty text is one empty part (a media-only message still needs one request).
    Raises ``ValueError`` for a limit too small to hold any grapheme cluster of the text.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    if utf16_length(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    remaining = utf16_length(text)  # kept up to date: measuring the rest each time is O(n²)
    while remaining > limit:
        cut = _cut(rest, limit)
        part = rest[:cut]
        parts.append(part)
        remaining -= utf16_length(part)
        rest = rest[cut:]
    if rest:
        parts.append(rest)
    return parts


def _cut(text: str, limit: int) -> int:
    """Where to cut ``text`` (longer than ``limit``): a grapheme boundary within it."""
    boundaries: set[int] = set()
    used = 0
    end = 0
    for cluster in _GRAPHEME.finditer(text):
        size = utf16_length(cluster.group())
        if used + size > limit:
            break
        used += size
        end = cluster.end()
        boundaries.add(end)
    if end == 0:
        raise ValueError(f"a grapheme cluster is longer than {limit} UTF-16 units")
    window = text[:end]
    # A paragraph or sentence break only counts if it keeps the part at least half full:
    # otherwise a break near the start would give a tiny part.
    for pattern, floor in ((_PARAGRAPH, end // 2), (_SENTENCE, end // 2), (_WORD, 1)):
        best = _last_boundary(pattern, window, boundaries, floor)
        if best is not None:
            return best
    return end


def _last_boundary(
    pattern: regex.Pattern[str], window: str, boundaries: set[int], floor: int
) -> int | None:
    best: int | None = None
    for match in pattern.finditer(window):
        if match.end() >= floor and match.end() in boundaries:
            best = match.end()
    return best
