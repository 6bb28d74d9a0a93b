"""The cyclic garbage collector, tuned for processes that hold many person states.

Its young generation runs every 700 net allocations by default. A worker or a replay
allocates that much for every few inputs, so it ran hundreds of times a second,
promoted short-lived batch objects, and the older generations' passes then walked every
held person state: about a fifth of a large re-evaluation's time in a worker, and 40 %
of the pure engine's time over 20,000 persons (`bench.run`, engine section). Person
states are acyclic, so reference counting frees them; a larger first threshold still
collects the rare cycles.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: allocations between two young collections (`CHECKPOINT_GC_THRESHOLD` for a worker)
GC_THRESHOLD = 50_000


def collect_rarely(threshold: int = GC_THRESHOLD) -> None:
    """For the life of the process (a worker)."""
    gc.set_threshold(threshold, 20, 100)


@contextmanager
def collecting_rarely(threshold: int = GC_THRESHOLD) -> Iterator[None]:
    """For one replay, the caller's thresholds restored afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(threshold, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)
