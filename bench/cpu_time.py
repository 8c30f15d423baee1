"""CPU seconds a process and its descendants have used, from /proc (Linux).

On a machine shared with other work, requests per second measure the scheduler as much
as the server; CPU time per request measures the server alone, so the intake bench
prints it beside the wall-clock numbers.
"""

from __future__ import annotations

import os
from pathlib import Path


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(x) for x in task.read_text().split()]
        except OSError:
            continue
    return found


def _own(pid: int) -> float:
    try:
        # Fields after the parenthesised command name: utime and stime are 12th and 13th.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and every live descendant (0.0 off Linux)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += _own(current)
        pending += _children(current)
    return total
