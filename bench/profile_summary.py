"""Where the time went, from py-spy's collapsed stacks (``py-spy record --format raw --idle``).

For each file, as shares of wall-clock time (the main thread's samples): how busy each
thread was (not waiting: the event loop in ``select``, pool threads waiting for work), and
the main thread's busiest frames, by leaf (self time) and by any project frame on the
stack (inclusive time).

Usage: ``python -m bench.profile_summary FILE... [--top N]``.
"""

from __future__ import annotations

import re
import sys
from collections import Counter

# ``Runner.run``: on uvloop the loop (waiting included) is C code below that frame.
_IDLE_LEAVES = ("select (selectors.py", "wait (threading.py", "_worker (concurrent/futures",
                "get (queue.py", "poll (selectors.py", "_wait_for_tstate_lock",
                "Runner.run (asyncio/runners.py")
_PROJECT = re.compile(r"^[^ ]+ \((adapters|application|bootstrap|domain)/")
_THREAD = re.compile(r"^thread \(\d+\)(?:: (.*))?$")


def summarize(path: str, top: int) -> str:
    wall = 0
    threads: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    with open(path) as lines:
        for line in lines:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            if frames[0].startswith("process "):  # py-spy --subprocesses names the process first
                frames = frames[1:]
            match = _THREAD.match(frames[0])
            thread = (match.group(1) or "thread") if match else frames[0]
            thread = re.sub(r"_\d+$", "", thread)
            if thread == "MainThread":
                wall += count
            leaf = frames[-1]
            if any(marker in leaf for marker in _IDLE_LEAVES):
                continue
            threads[thread] += count
            if thread != "MainThread":
                continue
            leaves[leaf] += count
            for frame in dict.fromkeys(f for f in frames[1:] if _PROJECT.match(f)):
                inclusive[frame] += count
    if not wall:
        return f"{path}: no main-thread samples"

    def pct(n: int) -> str:
        return f"{100 * n / wall:5.1f}%"

    out = [f"{path}: {wall} main-thread samples; busy share of wall time per thread:"]
    out += [f"  {pct(n)} {name}" for name, n in threads.most_common(6)]
    out.append("  main thread, busiest leaves (self):")
    out += [f"    {pct(n)} {frame}" for frame, n in leaves.most_common(top)]
    out.append("  main thread, project frames (inclusive):")
    out += [f"    {pct(n)} {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    top = 12
    if "--top" in argv:
        at = argv.index("--top")
        top = int(argv[at + 1])
        argv = argv[:at] + argv[at + 2:]
    for path in argv:
        print(summarize(path, top))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
