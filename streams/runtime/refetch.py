"""Records the consumer fetched that Faust never handed to the agent: read them again.

Faust takes records from aiokafka's fetcher a batch at a time (`Consumer.getmany`), and
the fetcher's position moves past a batch as it is handed over. Faust drops the rest of
a batch, leaving the position where it is, when the flow stops or the generation changes
while it iterates (a rebalance), or when a partition left the active set meanwhile, and
counts on seeking every partition back to its committed offset before the flow resumes.
A rebalance that needs no table recovery does not quite do that: it resumes the flow,
runs the tables' recovery callbacks (the worker's index rebuild among them), and only
then resumes the stream partitions and seeks them (`Recovery._restart_recovery` and
`on_recovery_completed`, faust-streaming 0.15). Which of the drops loses the batch in
that window was not pinned down (Faust's own debug log, `DEVLOG=1`, changes the timing
enough that it did not happen in four runs); no upstream issue tracks it.

Seen in the two-worker property test (tests/integration/test_live_property.py) on a
loaded machine: after the second worker joined mid-backlog, topic-partitions with the
fetcher's position at the end of the topic and Faust's read offset at the committed
offset, nothing delivered and nothing buffered, for minutes. On the wall clock those
inputs would be decided only after the next rebalance (or skipped, once later offsets
are committed); on the stream clock every partition waited for them.

So every record goes through `Refetch.admit` on its way to the agent, which keeps each
topic-partition's next offset: a record handed over already (Faust can hand over a kept
partition's records from the fetcher's position and again from the committed offset it
then seeks to) is dropped; a record after a hole asks for a seek back to the hole. On the
wall clock the record is taken at once and only the hole's records are taken from the
second reading; on the stream clock (`strict`), which takes a partition's records in
offset order, it is dropped and read again with the hole.

A hole at the head (nothing handed over since the assignment, or since the last record)
shows no later record; the watch finds it (`check`, every `CHECKPOINT_REFETCH_INTERVAL`
seconds): the fetcher's position is past the next offset the agent should see, the
fetcher holds nothing for the partition and the agent's queue is empty, at `patience`
checks in a row. Found again after its seek, a gap holds no records (a transaction's
commit marker, records deleted by retention): one seek per such gap, then it is left
alone (on the stream clock, taken past). Pure bookkeeping here; the worker reads the
facts from the consumer and seeks (`Live.handle`, `Live.refetch_lost`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: (topic, partition) as the broker names them
TP = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Fetcher:
    """What the consumer knows of one topic-partition at a check."""

    position: int | None  # the fetcher's next offset (None: not known yet)
    buffered: bool  # records fetched and not yet taken by Faust
    committed: int | None  # the group's committed offset (None: never committed)


#: holes kept per topic-partition on the wall clock (a producer's transaction markers
#: leave offsets that never hold a record: those holes are never filled)
MAX_HOLES = 16


@dataclass(slots=True)
class Refetch:
    """Each record handed to the agent once, in offset order per topic-partition, and the
    records the consumer lost read again (see the module docstring).

    `strict` (the stream clock): a record after a hole waits (it is dropped and read again
    with the hole), so a partition's records are taken in offset order, as the alignment
    needs. Otherwise (the wall clock) it is taken at once and only the hole is read again."""

    strict: bool = False
    patience: int = 3
    #: per topic-partition, the offset after the highest record the agent took
    seen: dict[TP, int] = field(default_factory=dict)
    #: per topic-partition, the seek to make: the offset to read again from
    wanted: dict[TP, int] = field(default_factory=dict)
    #: wall clock: per topic-partition, offsets [start, end) skipped, being read again
    holes: dict[TP, list[tuple[int, int]]] = field(default_factory=dict)
    #: per topic-partition, the hole start a seek was asked for (not asked again)
    _asked: dict[TP, int] = field(default_factory=dict)
    #: strict: per topic-partition, a hole start found to hold no records (taken past)
    _empty: dict[TP, int] = field(default_factory=dict)
    #: per suspected topic-partition: (expected, position) and checks in a row
    _suspects: dict[TP, tuple[int, int, int]] = field(default_factory=dict)
    #: per topic-partition, the (expected, position) last sought back by `check`
    _sought: dict[TP, tuple[int, int]] = field(default_factory=dict)

    def admit(self, tp: TP, offset: int) -> bool:
        """Hand the record at `offset` to the agent? No for a record handed over already
        (read again by a seek back), and, when strict, for one after a hole."""
        expected = self.seen.get(tp)
        if expected is None or offset == expected:
            self.seen[tp] = offset + 1
            return True
        if offset < expected:
            return self._fills(tp, offset)
        if self.strict:
            if self._empty.get(tp) == expected:  # nothing there: take the next one
                del self._empty[tp]
                self.seen[tp] = offset + 1
                return True
            self._ask(tp, expected)
            return False
        holes = self.holes.setdefault(tp, [])
        holes.append((expected, offset))
        del holes[:-MAX_HOLES]
        self._ask(tp, expected)
        self.seen[tp] = offset + 1
        return True

    def _fills(self, tp: TP, offset: int) -> bool:
        """A record read again: taken when it falls in a hole (which it then narrows)."""
        holes = self.holes.get(tp, [])
        for index, (start, end) in enumerate(holes):
            if start <= offset < end:
                holes[index:index + 1] = [(a, b) for a, b in ((start, offset), (offset + 1, end)) if a < b]
                return True
        return False

    def _ask(self, tp: TP, offset: int) -> None:
        """Read again from `offset` (from the earliest, when one batch shows two holes)."""
        if self._asked.get(tp) != offset:
            self._asked[tp] = offset
            self.wanted[tp] = min(self.wanted.get(tp, offset), offset)

    def take_wanted(self) -> list[tuple[TP, int]]:
        """The seeks to make now (each asked once)."""
        wanted = sorted(self.wanted.items())
        self.wanted.clear()
        return wanted

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions revoked: after the rebalance Faust seeks them to their committed
        offsets, which is what the agent should see next."""
        gone = set(partitions)
        for table in (self.seen, self.wanted, self.holes, self._asked, self._empty,
                      self._suspects, self._sought):
            for tp in [tp for tp in table if tp[1] in gone]:
                del table[tp]

    def expected(self, tp: TP, committed: int | None) -> int:
        found = self.seen.get(tp)
        if found is not None:
            return found
        return committed or 0

    def check(self, facts: Mapping[TP, Fetcher], queue_empty: bool) -> list[tuple[TP, int]]:
        """The topic-partitions to seek back, with the offset to read from. Called
        every few seconds; `queue_empty`: nothing waits for the agent in Faust's queue.

        Found again after its seek, a gap holds no records (a transaction's commit
        marker, records deleted by retention): it is left alone, or, when strict (the
        records after it were dropped while waiting for it), read once more and taken
        past."""
        if not queue_empty:
            self._suspects.clear()
            return []
        seek: list[tuple[TP, int]] = []
        suspects: dict[TP, tuple[int, int, int]] = {}
        for tp, fact in sorted(facts.items()):
            expected = self.expected(tp, fact.committed)
            if fact.position is None or fact.buffered or fact.position <= expected:
                continue
            pair = (expected, fact.position)
            before = self._suspects.get(tp)
            count = before[2] + 1 if before is not None and before[:2] == pair else 1
            if count < self.patience:
                suspects[tp] = (expected, fact.position, count)
            elif self._sought.get(tp) != pair:
                seek.append((tp, expected))
                self._sought[tp] = pair
            elif self.strict and self._empty.get(tp) != expected:
                self._empty[tp] = expected
                seek.append((tp, expected))
        self._suspects = suspects
        return seek


__all__ = ["TP", "Fetcher", "Refetch"]
