"""Table rows written to the store and sent to the changelog by us, not by the Table.

A Faust `Table[key] = value` sends its changelog record through `Topic.send_soon`: a
FutureMessage, the producer buffer, `publish_message` and its callbacks, about 40 µs a
record more than handing the same record to the app's producer, and the worker writes a
record per decided person (a scan, a re-evaluated visitor). `ChangelogWriter` writes the
row to the table's store and sends the same record (raw key and value, in the key's
murmur2 partition, on the table's changelog topic) itself, so Faust's recovery and
standby replicas read it as one of its own. What Faust's `_on_changelog_sent` does on
acknowledgement is done too: a RocksDB store remembers the changelog offset it holds,
where its recovery resumes.

Faust's commit flushes the producer before it commits offsets, so an input's offset is
still committed only after the records sent while it was processed are acknowledged.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable, Iterable
from typing import Any, cast

from faust.types.stores import StoreT
from kafka.partitioner.default import murmur2


@functools.lru_cache(maxsize=1 << 18)
def key_partition(key: bytes, partitions: int) -> int:
    """The Kafka default partitioner (murmur2), as producers and Faust's tables use it.

    Cached: kafka-python's murmur2 is pure Python (about 10 µs a key), a raise asks it for
    every recent visitor, and persons come back (their next scan, their results)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's `DefaultPartitioner` with the murmur2 of `key_partition` (cached): the
    producer's `partitioner` (Faust's `producer_partitioner`) for every keyed output whose
    partition the worker leaves to the producer; the same partition as before."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[key_partition(key, len(all_partitions))]


class ChangelogWriter:
    """Writes rows of one `use_partitioner` table of raw bytes (see the module docstring).

    `failed(topic, delivery)` is called with a delivery the broker refused."""

    def __init__(self, app: Any, table: Any,
                 failed: Callable[[str, asyncio.Future[Any]], None]) -> None:
        self.app = app
        self.table = table
        self.failed = failed
        # one key's records must reach the producer in the order its rows were written;
        # writers run concurrently and a send can wait for room in the producer
        self._order = asyncio.Lock()

    @functools.cached_property
    def topic(self) -> str:
        return cast(str, self.table.changelog_topic.get_topic_name())

    @functools.cached_property
    def partitions(self) -> int:
        return int(self.table.partitions or self.app.conf.topic_partitions)

    async def write(self, rows: Iterable[tuple[bytes, bytes]]) -> None:
        """Store the rows now, then hand their changelog records to the producer, in order."""
        rows = list(rows)
        if not rows:
            return
        store = self.table.data
        for key, value in rows:
            store[key] = value
        async with self._order:
            producer = await self.app.maybe_start_producer()
            topic, partitions = self.topic, self.partitions
            for key, value in rows:
                delivery = await producer.send(topic, key, value, key_partition(key, partitions),
                                               None, None)
                delivery.add_done_callback(self._acknowledged)

    def _acknowledged(self, delivery: asyncio.Future[Any]) -> None:
        if delivery.cancelled():
            return
        if delivery.exception() is not None:
            self.failed(self.topic, delivery)
            return
        sent = delivery.result()
        cast(StoreT, self.table.data).set_persisted_offset(sent.topic_partition, sent.offset)
