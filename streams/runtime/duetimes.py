"""When time alone changes a person: a heap of due times, derived from the states.

Releases, missed-test checks and test windows are due times of a person's state
(`PersonState.next_due`), not rows of a table of their own: faust-streaming's windowed
tables expire unreliably after a rebalance or a recovery with RocksDB (faust-streaming
#385, #193), and a second table would cost a changelog record per decision. The heap
holds (due, person) entries; `note` keeps it in step with each saved state, stale
entries are skipped when popped, and after a rebalance the owner rebuilds it from the
recovered states. What pops is handed to the person's partition as a tick, decided and
committed like any input. Until it is decided, its due time is *firing*: a day is not
closed for the daily reports while a release due on it may still be counted
(`earliest`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable


class DueTimes:
    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        #: person -> the due time their newest state names (the heap entry that matches is current)
        self._due: dict[str, int] = {}
        #: person -> the due time of a tick handed on and not yet decided
        self._firing: dict[str, int] = {}

    def note(self, person: str, due: int | None) -> None:
        """The person's newest state is due at `due` (None: nothing pending)."""
        self._firing.pop(person, None)
        if due is None:
            self._due.pop(person, None)
        elif self._due.get(person) != due:
            self._due[person] = due
            heapq.heappush(self._heap, (due, person))

    def pop_due(self, now: int, ready: Callable[[str, int], bool] | None = None) -> list[tuple[str, int]]:
        """(person, due) of every current entry due by `now`, earliest first, taken off the
        heap (the person's next state notes its next due time). `ready(person, due)` may
        hold an entry back (its partition's clock has not reached it): it stays."""
        fired: list[tuple[str, int]] = []
        later: list[tuple[int, str]] = []
        while self._heap and self._heap[0][0] <= now:
            due, person = heapq.heappop(self._heap)
            if self._due.get(person) != due:
                continue  # stale: the person changed since
            if ready is not None and not ready(person, due):
                later.append((due, person))
                continue
            del self._due[person]
            self._firing[person] = due
            fired.append((person, due))
        for entry in later:
            heapq.heappush(self._heap, entry)
        return fired

    def decided(self, person: str) -> None:
        """The person's tick was decided (whatever it changed)."""
        self._firing.pop(person, None)

    def earliest(self) -> int | None:
        """The earliest due time not yet decided: pending, or firing (None: nothing)."""
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # stale
        times = [self._heap[0][0]] if self._heap else []
        if self._firing:
            times.append(min(self._firing.values()))
        return min(times) if times else None

    def forget(self, persons: Iterable[str]) -> None:
        for person in persons:
            self._due.pop(person, None)
            self._firing.pop(person, None)

    def clear(self) -> None:
        self._heap.clear()
        self._due.clear()
        self._firing.clear()

    def __len__(self) -> int:
        return len(self._due)
