"""The stream clock (`CHECKPOINT_CLOCK=stream`): inputs in event-time order, partition by
partition, whatever order the worker's consumer fetches them in.

A recording replayed through the live pipeline (a backfill, a test) must decide as the
offline replay does, which takes every record in event-time order (`Pipeline.order_key`).
A worker reads each partition of several topics independently, and after a restart or
with a backlog one topic can run days of event time ahead of another. So, on the stream
clock, each partition is a *task* that buffers what it consumed and takes the record
with the smallest key next, once nothing smaller can still come:

* from its own topics: each topic either has a record buffered, or has been read to its
  high watermark, or its last record's key is not smaller (a topic partition is produced
  in event-time order: `checkpoint-streams produce` sends a recording that way);
* from the other partitions, which forward inputs to it (a pooled tube's members, a
  register change): each task sends every other one a *mark*, in band on the same
  internal topic after its forwards, saying the smallest key it may still forward *to
  that partition* (None: nothing): the smallest buffered record that forwards there, or
  the key of the last record fetched from a topic not yet read to its end (a topic
  partition comes in key order). An item forwarded by a task is taken once that task's
  mark has passed it. Marks follow what was fetched, not what was taken, so partitions
  do not advance in lock-step, one round trip through Kafka per record; and an input
  that only changes partition (a scan whose person another partition owns) is forwarded
  as soon as it is consumed, never held here (the receiver orders it by its key).

The global minimum can always be taken, so tasks never wait on each other in a cycle.
Timers (releases) of a partition follow its watermark: the smallest key that is not yet
taken or may still come, or, once everything is taken, the latest event time any task
took (what the replay's clock reaches at the end).

Limits: a record produced later with an earlier key than one already taken is late and
is taken when it comes; after a partition moves to another worker, its new owner
re-sends what its predecessor forwarded (duplicates, which the engine ignores). On the
wall clock none of this runs: inputs are taken as they come.

Pure bookkeeping, no Faust or Kafka import: the worker passes in what its consumer knows.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: an order key (`streams.pipeline.core.OrderKey`); None stands for "nothing more"
Key = tuple[Any, ...]
#: before every key
FIRST: Key = (-(2**62),)
#: (topic, partition) -> an offset, or None when not known
Offsets = Callable[[str, int], "int | None"]


@dataclass(slots=True)
class _Task:
    heads: dict[str, deque[tuple[Key, Any, int, int]]]  # key, entry, sequence, targets
    last: dict[str, Key] = field(default_factory=dict)  # key of the last record taken in
    fetched: dict[str, int] = field(default_factory=dict)  # next offset after it
    items: list[tuple[Key, int, Any]] = field(default_factory=list)  # forwarded, a heap
    marks: dict[int, Key | None] = field(default_factory=dict)  # per other partition
    done: int = 0  # latest event time taken here
    seen: dict[int, int] = field(default_factory=dict)  # latest event time of the others
    #: per target partition, the buffered records that forward there: a heap of (key,
    #: sequence); a sequence in `taken` is gone (removed lazily: the count is how many
    #: heaps still hold it)
    forwards: dict[int, list[tuple[Key, int]]] = field(default_factory=dict)
    taken: dict[int, int] = field(default_factory=dict)


class Alignment:
    """Per partition of this worker: what to take next on the stream clock."""

    def __init__(self, partitions: int, topics: tuple[str, ...], highwater: Offsets,
                 committed: Offsets) -> None:
        self.partitions = partitions
        self.topics = topics  # this partition's own input topics (not the forwarded one)
        self.highwater = highwater
        self.committed = committed
        self.tasks: dict[int, _Task] = {}
        self._sequence = itertools.count()

    def task(self, partition: int) -> _Task:
        found = self.tasks.get(partition)
        if found is None:
            found = self.tasks[partition] = _Task({topic: deque() for topic in self.topics})
        return found

    def revoke(self, partitions: set[int]) -> list[Any]:
        """Forget partitions this worker no longer owns; returns what was still buffered
        (never taken, so never acknowledged: their new owner reads them again)."""
        dropped: list[Any] = []
        for partition in partitions:
            task = self.tasks.pop(partition, None)
            if task is not None:
                dropped.extend(entry for heads in task.heads.values() for _, entry, _, _ in heads)
                dropped.extend(entry for _, _, entry in task.items)
        return dropped

    # -- what comes in -------------------------------------------------------------
    def add(self, partition: int, topic: str, offset: int, key: Key, entry: Any,
            targets: tuple[int, ...] = ()) -> None:
        """A record of one of the partition's own topics, in offset order; `targets`: the
        other partitions taking it will forward something to."""
        task = self.task(partition)
        sequence = next(self._sequence) if targets else -1
        for target in targets:
            heapq.heappush(task.forwards.setdefault(target, []), (key, sequence))
        heads = task.heads[topic]
        record = (key, entry, sequence, len(targets))
        if heads and key < heads[-1][0]:  # handed over late (see `_moved`): in key order
            heads.insert(bisect.bisect_right(heads, key, key=lambda head: head[0]), record)
        else:
            heads.append(record)
        self._moved(task, topic, offset, key)

    def passed(self, partition: int, topic: str, offset: int, key: Key) -> None:
        """A record of the partition's own topics that was handed on without waiting (a
        relay): the topic's position moves past it all the same."""
        self._moved(self.task(partition), topic, offset, key)

    @staticmethod
    def _moved(task: _Task, topic: str, offset: int, key: Key) -> None:
        """A topic's position only moves forward: after a rebalance Faust may hand over a
        record it fetched before seeking back to the committed offset, late, after the
        records that follow it (a position moved back would wait for them forever)."""
        if offset + 1 >= task.fetched.get(topic, 0):
            task.fetched[topic] = offset + 1
            task.last[topic] = key

    def add_item(self, partition: int, key: Key, entry: Any) -> None:
        """An input another partition forwarded here (taken in key order)."""
        heapq.heappush(self.task(partition).items, (key, next(self._sequence), entry))

    def mark(self, partition: int, source: int, key: Key | None, latest: int) -> None:
        """Partition `source` may still forward keys from `key` on (None: nothing)."""
        task = self.task(partition)
        task.marks[source] = key
        task.seen[source] = max(task.seen.get(source, 0), latest)

    # -- what goes out -------------------------------------------------------------
    def _bound(self, partition: int, task: _Task, topic: str) -> Key | None:
        """The smallest key the topic may still bring here (None: nothing)."""
        heads = task.heads[topic]
        if heads:
            return heads[0][0]
        end = self.highwater(topic, partition)
        position = task.fetched.get(topic)
        if position is None:
            position = self.committed(topic, partition) or 0
        if end is not None and position >= end:
            return None
        return task.last.get(topic, FIRST)

    def own_mark(self, partition: int, target: int) -> Key | None:
        """The smallest key this partition may still forward to `target` (None: nothing):
        its buffered records that forward there, and what its topics may still bring."""
        task = self.task(partition)
        bounds = []
        for topic in self.topics:
            end = self.highwater(topic, partition)
            position = task.fetched.get(topic)
            if position is None:
                position = self.committed(topic, partition) or 0
            if end is None or position < end:
                bounds.append(task.last.get(topic, FIRST))
        pending = task.forwards.get(target)
        while pending and pending[0][1] in task.taken:
            sequence = heapq.heappop(pending)[1]
            task.taken[sequence] -= 1
            if not task.taken[sequence]:
                del task.taken[sequence]
        if pending:
            bounds.append(pending[0][0])
        return min(bounds) if bounds else None

    def latest(self, partition: int) -> int:
        return self.task(partition).done

    def ready(self, partition: int) -> Iterator[Any]:
        """Take, in key order, every entry nothing smaller can still precede."""
        task = self.task(partition)
        others = [p for p in range(self.partitions) if p != partition]
        while True:
            best: tuple[Key, str | None] | None = None
            for topic in self.topics:
                heads = task.heads[topic]
                if heads and (best is None or heads[0][0] < best[0]):
                    best = (heads[0][0], topic)
            if task.items and (best is None or task.items[0][0] < best[0]):
                best = (task.items[0][0], None)
            if best is None:
                return
            key, source = best
            for topic in self.topics:
                if topic != source and not task.heads[topic]:
                    bound = self._bound(partition, task, topic)
                    if bound is not None and bound < key:
                        return  # that topic may still bring something earlier
            for other in others:
                mark = task.marks.get(other, FIRST)
                if mark is not None and mark <= key:
                    return  # that partition may still forward something earlier
            if source is None:
                entry = heapq.heappop(task.items)[2]
            else:
                _, entry, sequence, targets = task.heads[source].popleft()
                if targets:
                    task.taken[sequence] = targets
            task.done = max(task.done, int(key[0]))
            yield entry

    def blocked(self, partition: int) -> str | None:
        """Why the partition's next entry waits (None: nothing buffered, or it may go):
        what an operator needs when a stream-clock run stops moving."""
        task = self.task(partition)
        heads = [(h[0][0], t) for t, h in task.heads.items() if h]
        if task.items:
            heads.append((task.items[0][0], "forwarded"))
        if not heads:
            return None
        key, _ = min(heads)
        for topic in self.topics:
            if not task.heads[topic]:
                bound = self._bound(partition, task, topic)
                if bound is not None and bound < key:
                    return (f"topic {topic} may still bring something earlier (fetched up to "
                            f"{task.fetched.get(topic)}, committed {self.committed(topic, partition)}, "
                            f"end {self.highwater(topic, partition)})")
        for other in range(self.partitions):
            mark = task.marks.get(other, FIRST) if other != partition else None
            if mark is not None and mark <= key:
                return f"partition {other}'s mark ({mark[:1]}) is not past the next entry ({key[:1]})"
        return None

    def watermark(self, partition: int) -> int:
        """The event time this partition's timers may fire up to (see the module docstring)."""
        task = self.task(partition)
        pending = [b for t in self.topics if (b := self._bound(partition, task, t)) is not None]
        if task.items:
            pending.append(task.items[0][0])
        for other in range(self.partitions):
            if other != partition:
                mark = task.marks.get(other, FIRST)
                if mark is not None:
                    pending.append(mark)
        if pending:
            return int(min(pending)[0])
        return max(task.done, *task.seen.values(), *(t.done for t in self.tasks.values()))
