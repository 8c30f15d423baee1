"""The garbage collector set for a long-running process (`wta serve`, `wta worker`, arq's CLI).

CPython's default collects the youngest generation every 700 net container allocations.
A webhook or a job allocates thousands (rows, dicts, coroutines, log records), so under
load the collector ran about 80 times a second, and each pass also walked what startup
built (modules, the ORM's metadata, the container): 9-11% of the embedded server's CPU
at 250 msg/s, with the full passes showing up as tail latency (bench/bench_delivery.py).
So, once the process is built: collect startup's garbage, move everything left to the
permanent generation (``gc.freeze``: never walked again), and collect the youngest
generation every 10,000 allocations. Reference cycles are still freed, in rarer passes.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def settle_for_serving() -> None:
    """Call once, after startup built what lives as long as the process."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, young), middle, old)
