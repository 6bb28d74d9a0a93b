"""Table rows written to the store and sent to the changelog by the worker, not the Table.

A Faust `Table[key] = value` sends its changelog record through `Topic.send_soon`: a
FutureMessage, the producer buffer, `publish_message` and its callbacks, about 40 µs a
record more than handing the same record to the app's producer, and the worker writes a
record per decided person. `ChangelogWriter` writes the row to the table's store and
sends the same record (raw key and value, on the table's changelog topic, in the row's
partition) itself, so Faust's recovery and standby replicas read it as one of its own.
The rows of one write go as one batch per partition (`batches.send_batches`). What
Faust's `_on_changelog_sent` does on acknowledgement is done too, once a batch: a RocksDB
store remembers the changelog offset it holds (the batch's last), where its recovery
resumes.

A row's partition is murmur2(key), the partition of the person's inputs; a *partition
row* (`partition_row_key`: the daily counts of one partition) names its partition in its
key, so that it sits in the changelog partition, and the store file, of the inputs it
counts.

Upstream: no issue tracks the per-record cost; tests/unit/test_runtime_pins.py fails when
an upgrade changes the store's `set_persisted_offset` or the table's changelog topic.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Iterable
from typing import Any, cast

from faust.types.stores import StoreT

from ..partitioning import key_partition
from .batches import Batch, send_batches

#: partition rows start with a byte no person reference can start with
PARTITION_ROW = b"\x00"


def partition_row_key(partition: int, name: str) -> bytes:
    """The key of a row that belongs to partition `partition` (not to a person)."""
    return PARTITION_ROW + f"{partition}\x00{name}".encode()


def parse_partition_row(key: bytes) -> tuple[int, str] | None:
    """(partition, name) of a partition row; None for a person's row."""
    if not key.startswith(PARTITION_ROW):
        return None
    partition, _, name = key[1:].decode().partition("\x00")
    return int(partition), name


def row_partition(key: bytes, partitions: int) -> int:
    """The changelog partition of a row: its own for a partition row, else murmur2."""
    if key.startswith(PARTITION_ROW):
        return int(key[1:key.index(b"\x00", 1)])
    return key_partition(key, partitions)


def partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's `DefaultPartitioner` with the murmur2 of `key_partition` (cached): the
    producer's `partitioner` (Faust's `producer_partitioner`) for every keyed output whose
    partition the worker leaves to the producer; the same partition as before."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[key_partition(key, len(all_partitions))]


class ChangelogWriter:
    """Writes rows of one `use_partitioner` table of raw bytes (see the module docstring)."""

    def __init__(self, app: Any, table: Any) -> None:
        self.app = app
        self.table = table
        # one key's records must reach the producer in the order its rows were written;
        # writers run concurrently and a send can wait for room in the producer
        self._order = asyncio.Lock()

    @functools.cached_property
    def topic(self) -> str:
        return cast(str, self.table.changelog_topic.get_topic_name())

    @functools.cached_property
    def partitions(self) -> int:
        return int(self.table.partitions or self.app.conf.topic_partitions)

    async def write(self, rows: Iterable[tuple[bytes, bytes | None]]) -> list[asyncio.Future[Any]]:
        """Store the rows now (None: delete), then hand their changelog records to the
        producer, in order; returns the deliveries (a failed one is the caller's to act on)."""
        rows = list(rows)
        if not rows:
            return []
        store = self.table.data
        for key, value in rows:
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value
        async with self._order:
            producer = await self.app.maybe_start_producer()
            topic, partitions = self.topic, self.partitions
            batches = await send_batches(producer, [(topic, row_partition(key, partitions), key, value)
                                                    for key, value in rows])
        for batch in batches:
            batch.future.add_done_callback(functools.partial(self._acknowledged, batch))
        return [batch.future for batch in batches]

    def _acknowledged(self, batch: Batch, delivery: asyncio.Future[Any]) -> None:
        if delivery.cancelled() or delivery.exception() is not None:
            return  # the caller awaits it and acts
        cast(StoreT, self.table.data).set_persisted_offset(
            delivery.result().topic_partition, batch.last_offset())
