"""The stream clock (`CHECKPOINT_CLOCK=stream`): event time as the worker has consumed it.

A recording replayed through the live pipeline (a backfill, a test) must decide as the
offline replay does, which runs every record in event-time order. The live worker reads a
person's partition of several topics (station and highway scans, results, notices,
person work) independently, and one topic can run ahead of another by seconds of
consumption: after a broker restart or a rebalance a fetch of one partition can bring
thousands of records, days of a recording's event time. Inputs are judged at their own
event time (`process` never advances a person beyond it), but a release timer that took
the partition's clock from the topic that ran ahead would release a person whose next,
earlier input still waits on the other topic; the replay applies that input first.

So timers follow a watermark: the largest event time consumed on the partition, held back
to the event time of any of its topics that still has records waiting (its processed
position is short of the partition's high watermark). A topic that has caught up does not
hold the clock back, so a quiet topic (operator commands) never stalls it.

Limits: a person's inputs on different topics are still applied in the order they are
consumed (`checkpoint-streams produce` sends a recording in event-time order, which keeps
them in step while the worker keeps up). A topic partition that retention emptied and
this consumer group never committed looks as if it had records waiting (its committed
offset counts as 0), and holds its partition's timers back until something arrives there.

Pure bookkeeping, no Faust or Kafka import: the worker passes in what its consumer knows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

#: (topic, partition) -> an offset, or None when not known
Offsets = Callable[[str, int], "int | None"]


class StreamClock:
    """Per topic and partition: the largest event time consumed and the next offset to process."""

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = tuple(topics)
        self._times: dict[tuple[str, int], int] = {}
        self._next: dict[tuple[str, int], int] = {}

    def saw(self, topic: str, partition: int, event_time: int) -> None:
        """An input of `topic` with this event time is being processed."""
        key = (topic, partition)
        if event_time > self._times.get(key, 0):
            self._times[key] = event_time

    def processed(self, topic: str, partition: int, offset: int) -> None:
        """The record at `offset` is done with (decided or dead-lettered)."""
        key = (topic, partition)
        if offset + 1 > self._next.get(key, 0):
            self._next[key] = offset + 1

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions this worker no longer owns: a later owner starts from its commits."""
        gone = set(partitions)
        for table in (self._times, self._next):
            for key in [k for k in table if k[1] in gone]:
                del table[key]

    def now(self, partition: int | None = None) -> int:
        """The largest event time consumed on `partition` (on any when None), 0 before any."""
        return max((t for (_, p), t in self._times.items() if partition is None or p == partition),
                   default=0)

    def watermark(self, partition: int, highwater: Offsets, committed: Offsets) -> int:
        """The time timers of `partition` may advance to: `now(partition)`, held back to the
        event time of every topic with records not yet processed there.

        `highwater(topic, partition)` is the offset the next record will get (None: not
        fetched yet, so possibly behind); `committed` is where this worker started reading
        a topic it has processed nothing of yet (None: the start of the topic)."""
        mark = self.now(partition)
        for topic in self.topics:
            end = highwater(topic, partition)
            position = self._next.get((topic, partition))
            if position is None:
                position = committed(topic, partition) or 0
            if end is None or position < end:
                mark = min(mark, self._times.get((topic, partition), 0))
        return mark
