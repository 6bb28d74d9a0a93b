"""Person states as the live worker reads and writes them: decided, in flight, stored.

A decided state cannot go to the table at once: outputs are acknowledged before the
state that produced them is stored (`streams.runtime.delivery`), or a crash could keep
a state whose events were never sent, and the redelivered input would then be a
duplicate that sends nothing. Until then it is *in flight*, and the next input of that
person must see it. `States.get` answers with the newest: in flight, or the table's
(decoded once and kept for persons who come back: a pooled-tube member, a re-evaluated
visitor, their next scan; the engine never changes a state it is given, so a decoded
state may be handed out again).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, MutableMapping

import orjson

from ..engine import PersonState
from .changelog import PARTITION_ROW


class States:
    """The person table seen through the states in flight and a decoded-state cache."""

    def __init__(self, table: MutableMapping[bytes, bytes], cache_size: int) -> None:
        self.table = table
        self.cache_size = cache_size
        #: person -> newest decided state whose row is not stored yet
        self.inflight: dict[str, PersonState] = {}
        #: person -> (the table value, the state decoded from it), oldest first (an
        #: OrderedDict: evicting a dict's oldest entry scans past every deleted slot)
        self._decoded: OrderedDict[str, tuple[bytes, PersonState]] = OrderedDict()
        #: persons whose state is deleted but whose tombstone is not written yet
        self._gone: set[str] = set()

    def get(self, person: str) -> PersonState | None:
        state = self.inflight.get(person)
        if state is not None:
            return state
        if person in self._gone:
            return None
        raw = self.table.get(person.encode())
        if not raw:
            return None
        cached = self._decoded.get(person)
        if cached is not None and (cached[0] is raw or cached[0] == raw):
            self._decoded.move_to_end(person)
            return cached[1]
        state = decode(raw)
        self._remember(person, raw, state)
        return state

    def decided(self, state: PersonState) -> None:
        """`state` is the person's newest; it is stored when `stored` says so."""
        self.inflight[state.person] = state

    def stored(self, state: PersonState, raw: bytes) -> None:
        """`state`, encoded as `raw`, is now the table's value (the caller wrote it)."""
        if self.inflight.get(state.person) is state:
            del self.inflight[state.person]
        self._remember(state.person, raw, state)

    def gone(self, person: str) -> None:
        """The person's state is deleted; its tombstone is written when `deleted` says so."""
        self.inflight.pop(person, None)
        self._decoded.pop(person, None)
        self._gone.add(person)

    def deleted(self, person: str) -> None:
        """The tombstone is written: the table has no row for the person any more."""
        self._gone.discard(person)

    def is_newest(self, state: PersonState) -> bool:
        """Is `state` still the newest decided state of its person (no later decision)?"""
        return self.inflight.get(state.person) is state

    def forget(self, persons: Iterable[str]) -> None:
        for person in persons:
            self.inflight.pop(person, None)
            self._decoded.pop(person, None)
            self._gone.discard(person)

    def _remember(self, person: str, raw: bytes, state: PersonState) -> None:
        self._decoded[person] = (raw, state)
        self._decoded.move_to_end(person)
        if len(self._decoded) > self.cache_size:
            self._decoded.popitem(last=False)

    def rows(self) -> Iterator[tuple[bytes, str | None, bytes | PersonState]]:
        """(key, person, value) of every row in one pass over the table, as it is read:
        partition rows (person None) and stored persons with their stored value, except
        persons deleted or decided since, whose newest state comes after, as itself.

        Nothing is copied. A worker's rows were listed whole, twice, on every rebalance:
        a million persons' states (over a gigabyte) held at once, on top of the store's
        own memory, just to rebuild the indexes. The caller must not await while it
        iterates (nothing else may write the table meanwhile)."""
        inflight, gone = self.inflight, self._gone
        for key, raw in self.table.items():
            if not raw:
                continue
            if key.startswith(PARTITION_ROW):
                yield key, None, raw
                continue
            person = key.decode()
            if person not in inflight and person not in gone:
                yield key, person, raw
        for person, state in inflight.items():
            yield person.encode(), person, state

    def __len__(self) -> int:
        return len(self._decoded)


def encode(state: PersonState) -> bytes:
    """A person's row: `PersonState.to_record()` as compact JSON (schemas/asyncapi.yaml)."""
    return orjson.dumps(state.to_record())


def decode(raw: bytes) -> PersonState:
    """A person's row back (one with every field, as written before 2026-12-04, too)."""
    return PersonState.from_json(orjson.loads(raw))


__all__ = ["States", "decode", "encode"]


