"""Splitting long text: joins back exactly, parts within the limit, no grapheme cut."""

from __future__ import annotations

import regex
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.twilio.long_text import TWILIO_MAX_PART_CHARS, split_text, utf16_length

_GRAPHEME = regex.compile(r"\X")

# Text rich in what breaks naive splitting: emoji ZWJ sequences, skin tones, flags,
# combining marks, CR LF, astral characters, and the separators the splitter looks for.
_PIECES = st.sampled_from([
    "a", "word ", "Sentence. ", "Why? ", "\n\n", "\n", " ", "\r\n", "e\u0301",
    "\U0001F468\u200D\U0001F469\u200D\U0001F467", "\U0001F44D\U0001F3FD", "\U0001F1E7\U0001F1F7",
    "\u0915\u094D\u0937", "\U00020000", "x" * 40, "\u00e9t\u00e9. ",
])
_TEXT = st.one_of(
    st.lists(_PIECES, max_size=400).map("".join),
    st.text(max_size=4000),
)


def _clusters(text: str) -> list[str]:
    return list(map(str, _GRAPHEME.findall(text)))


@settings(max_examples=200, deadline=None)
@given(text=_TEXT, limit=st.sampled_from([TWILIO_MAX_PART_CHARS, 50, 11]))
@example(text="\U0001F468\u200D\U0001F469\u200D\U0001F467" * 500, limit=TWILIO_MAX_PART_CHARS)
def test_split_then_join_gives_the_text_back_and_cuts_no_grapheme(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert "".join(parts) == text
    assert all(utf16_length(part) <= limit for part in parts)
    assert all(part for part in parts) or parts == [""]
    # No cut inside a cluster: the parts' clusters are exactly the text's clusters.
    assert [c for part in parts for c in _clusters(part)] == _clusters(text)


def test_a_short_text_is_one_part() -> None:
    assert split_text("hello") == ["hello"]
    assert split_text("") == [""]


def test_paragraph_breaks_are_preferred_to_sentences_and_words() -> None:
    first = "One. " * 200  # 1,000 characters of sentences
    text = first + "\n\n" + "Two words " * 100
    parts = split_text(text)
    assert parts[0] == first + "\n\n"


def test_sentence_ends_are_preferred_to_words() -> None:
    text = ("word " * 200).strip() + ". " + "more " * 300  # the end at 1,000 characters
    parts = split_text(text)
    assert parts[0].endswith(". ")


def test_words_are_not_cut_when_a_space_is_in_reach() -> None:
    text = "abcdefghi " * 400
    for part in split_text(text):
        assert part.endswith(" ")


def test_a_text_without_spaces_is_cut_between_emoji_never_inside() -> None:
    family = "\U0001F468\u200D\U0001F469\u200D\U0001F467"  # 8 UTF-16 units, one cluster
    parts = split_text(family * 400)
    assert all(part == family * (len(part) // len(family)) for part in parts)
    assert sum(len(p) for p in parts) == len(family) * 400


def test_a_break_too_early_is_not_taken() -> None:
    # A paragraph break 10 characters in would leave a tiny part: words are used instead.
    text = "Hi there.\n\n" + "lorem ipsum " * 300
    parts = split_text(text)
    assert len(parts[0]) > TWILIO_MAX_PART_CHARS // 2
