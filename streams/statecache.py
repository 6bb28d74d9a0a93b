"""Decoded person states kept for persons who come back (`CHECKPOINT_STATE_CACHE`).

A returning person (a pooled-tube member, a re-evaluated visitor, their next scan) then
skips orjson and `PersonState.from_json`. An entry is only good while it matches the
table's value: the caller hands in the value it read, and a mismatch is a miss.
"""

from __future__ import annotations

from collections import OrderedDict

from .engine import PersonState


class StateCache:
    """person -> (table value, the state decoded from it), the oldest write evicted first.

    `take` hands the state out and forgets it (the engine mutates states in place, so
    nobody else may hold it); `put` files it again with the value written for it.
    An OrderedDict, not a dict: evicting a dict's oldest entry (`next(iter(d))`) scans
    past every slot deleted before it until the dict resizes, 7 % of a 100k-visitor raise
    (`python -m bench.profile --retro 100000`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, tuple[bytes, PersonState]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, person: str, raw: bytes) -> PersonState | None:
        """The state decoded from `raw`, if cached; the entry is gone either way."""
        cached = self._entries.pop(person, None)
        if cached is not None and (cached[0] is raw or cached[0] == raw):
            return cached[1]
        return None

    def put(self, person: str, raw: bytes, state: PersonState) -> None:
        """`state` is now the table's value `raw` (the newest write of all)."""
        self._entries.pop(person, None)
        self._entries[person] = (raw, state)
        if len(self._entries) > self.limit:
            self._entries.popitem(last=False)
