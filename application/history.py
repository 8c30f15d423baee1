"""The part of a conversation the model sees: the newest turns that fit a character budget."""

from __future__ import annotations

from collections.abc import Sequence

from domain.message import Message


def within_budget(history: Sequence[Message], latest: Message, budget_chars: int) -> list[Message]:
    """Oldest first, ending with ``latest``, which is kept whatever its size.

    Older turns are added newest first while their bodies fit in what ``latest`` left of
    the budget; the first one that does not fit ends the history (a gap in the middle would
    misrepresent the conversation). Turns without text cost nothing.
    """
    # Messages that arrived after ``latest`` are the next job's to answer.
    earlier = [m for m in history if m.id != latest.id and m.created_at <= latest.created_at]
    remaining = budget_chars - len(latest.said)
    kept: list[Message] = []
    for message in reversed(earlier):
        cost = len(message.said)
        if cost > remaining:
            break
        remaining -= cost
        kept.append(message)
    kept.reverse()
    kept.append(latest)
    return kept
