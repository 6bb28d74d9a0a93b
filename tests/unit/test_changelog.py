"""`ChangelogWriter`: the person table's rows, written by the worker instead of the Table.

Recovery rebuilds a person's state from the last changelog record of their key, so the
records must be Faust's own (raw key and value, murmur2 partition, the table's topic), in
the order the rows were written even when the producer makes a send wait, and a RocksDB
store must learn the offset it holds.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import RecordMetadata, TopicPartition
from kafka.partitioner.default import murmur2

from streams.runtime.changelog import (
    ChangelogWriter,
    key_partition,
    parse_partition_row,
    partition_row_key,
)

TOPIC = "app-persons-changelog"


class Store(dict):  # type: ignore[type-arg]
    def __init__(self) -> None:
        super().__init__()
        self.persisted: dict[TopicPartition, int] = {}

    def set_persisted_offset(self, tp: TopicPartition, offset: int) -> None:
        self.persisted[tp] = offset


class Batch:
    def __init__(self, room: int) -> None:
        self.records: list[tuple[bytes | None, bytes | None]] = []
        self.room = room

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: Any) -> object | None:
        if self.records and len(self.records) >= self.room:
            return None
        self.records.append((key, value))
        return object()


class Producer:
    """Faust's producer around a stand-in for aiokafka's batch interface: records the
    records sent (topic, key, value, partition) and a delivery per batch; the first
    `stall` batches wait until `room` is set (the partition's previous batch not drained)."""

    def __init__(self, stall: int = 0, batch_records: int = 1000) -> None:
        self.sent: list[tuple[str, bytes, bytes, int]] = []
        self.deliveries: list[asyncio.Future[Any]] = []
        self.batches: list[list[tuple[bytes | None, bytes | None]]] = []
        self.stall = stall
        self.room = asyncio.Event()
        self.batch_records = batch_records
        self.client = SimpleNamespace(_wait_on_metadata=self._metadata)

    def _ensure_producer(self) -> Producer:
        return self

    async def _metadata(self, topic: str) -> None:
        return None

    def _partition(self, topic: str, partition: int | None, key: Any, value: Any,
                   serialized_key: bytes | None, serialized_value: bytes | None) -> int:
        assert partition is not None or serialized_key is not None
        return partition if partition is not None else key_partition(serialized_key, 4)

    def create_batch(self) -> Batch:
        return Batch(self.batch_records)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        if self.stall:
            self.stall -= 1
            await self.room.wait()
        self.sent.extend((topic, key, value, partition) for key, value in batch.records)
        self.batches.append(batch.records)
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery


def writer_for(producer: Producer) -> tuple[ChangelogWriter, Store]:
    store = Store()
    table = SimpleNamespace(data=store, partitions=4,
                            changelog_topic=SimpleNamespace(get_topic_name=lambda: TOPIC))

    async def maybe_start_producer() -> Producer:
        return producer

    app = SimpleNamespace(maybe_start_producer=maybe_start_producer,
                          conf=SimpleNamespace(topic_partitions=4))
    return ChangelogWriter(app, table), store


def test_partition_is_the_default_partitioners() -> None:
    for key in (b"p-1", b"ps-ABCDEFGHIJKLMNOP", "旅客".encode()):
        assert key_partition(key, 4) == (murmur2(key) & 0x7FFFFFFF) % 4


def test_partition_rows_sit_in_the_partition_they_name() -> None:
    async def scenario() -> None:
        producer = Producer()
        writer, store = writer_for(producer)
        key = partition_row_key(3, "counts:2022-08-19")
        await writer.write([(key, b"{}"), (b"p-1", b"x"), (b"p-1", None)])
        assert [partition for *_, partition in producer.sent] == [3, key_partition(b"p-1", 4),
                                                                    key_partition(b"p-1", 4)]
        assert parse_partition_row(key) == (3, "counts:2022-08-19")
        assert parse_partition_row(b"p-1") is None
        assert store == {key: b"{}"}  # None deletes the row (and sends a tombstone)

    asyncio.run(scenario())


def test_rows_go_to_the_store_at_once_and_to_the_changelog_as_faust_writes_them() -> None:
    async def scenario() -> None:
        producer = Producer()
        writer, store = writer_for(producer)
        await writer.write([(b"p-1", b'{"a":1}'), (b"p-2", b'{"b":2}')])
        assert store == {b"p-1": b'{"a":1}', b"p-2": b'{"b":2}'}
        assert producer.sent == [(TOPIC, b"p-1", b'{"a":1}', key_partition(b"p-1", 4)),
                                 (TOPIC, b"p-2", b'{"b":2}', key_partition(b"p-2", 4))]
        for offset, delivery in enumerate(producer.deliveries):
            tp = TopicPartition(TOPIC, producer.sent[offset][3])
            delivery.set_result(RecordMetadata(TOPIC, tp.partition, tp, 40 + offset, 0, 0, 0))
        await asyncio.sleep(0)
        assert store.persisted[TopicPartition(TOPIC, key_partition(b"p-2", 4))] == 41


def test_a_batch_of_rows_tells_the_store_the_offset_of_its_last_record() -> None:
    """One delivery per partition's batch: its metadata has the first record's offset."""
    async def scenario() -> None:
        producer = Producer(batch_records=2)
        writer, store = writer_for(producer)
        key = partition_row_key(1, "counts:2022-08-19")
        deliveries = await writer.write([(key, b"a"), (key, b"b"), (key, b"c")])
        assert producer.batches == [[(key, b"a"), (key, b"b")], [(key, b"c")]]
        assert deliveries == producer.deliveries
        tp = TopicPartition(TOPIC, 1)
        deliveries[0].set_result(RecordMetadata(TOPIC, 1, tp, 70, 0, 0, 0))
        await asyncio.sleep(0)
        assert store.persisted[tp] == 71
        deliveries[1].set_result(RecordMetadata(TOPIC, 1, tp, 72, 0, 0, 0))
        await asyncio.sleep(0)
        assert store.persisted[tp] == 72

    asyncio.run(scenario())


def test_a_later_row_of_the_same_key_is_never_sent_before_an_earlier_one() -> None:
    async def scenario() -> None:
        producer = Producer(stall=1)  # the first write's send waits for room
        writer, store = writer_for(producer)
        first = asyncio.ensure_future(writer.write([(b"p-1", b"old")]))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(writer.write([(b"p-1", b"new")]))
        await asyncio.sleep(0)
        assert store[b"p-1"] == b"new" and producer.sent == []
        producer.room.set()
        await asyncio.gather(first, second)
        assert [value for _, _, value, _ in producer.sent] == [b"old", b"new"]

    asyncio.run(scenario())


def test_a_refused_record_is_the_callers_to_act_on_and_no_offset_is_remembered() -> None:
    async def scenario() -> None:
        producer = Producer()
        writer, store = writer_for(producer)
        [delivery] = await writer.write([(b"p-1", b"x")])
        producer.deliveries[0].set_exception(RuntimeError("MessageSizeTooLarge"))
        await asyncio.sleep(0)
        assert isinstance(delivery.exception(), RuntimeError) and store.persisted == {}

    asyncio.run(scenario())


@pytest.mark.parametrize("rows", [[], iter([])])
def test_nothing_to_write_sends_nothing(rows: Any) -> None:
    producer = Producer()
    writer, store = writer_for(producer)
    asyncio.run(writer.write(rows))
    assert producer.sent == [] and store == {}


def test_the_producer_partitioner_is_aiokafkas_default_with_murmur2_cached():
    """Same partition as aiokafka's DefaultPartitioner for every key (outputs keep their
    partitions), a random available one for no key."""
    from aiokafka.partitioner import DefaultPartitioner

    from streams.runtime.changelog import partitioner

    default = DefaultPartitioner()
    for n in range(300):
        key = f"person-{n}".encode()
        for count in (1, 4, 7):
            parts = list(range(count))
            assert partitioner(key, parts, parts) == default(key, parts, parts)
    assert partitioner(None, [0, 1, 2, 3], [2]) == 2
    assert partitioner(None, [0, 1], []) in (0, 1)
