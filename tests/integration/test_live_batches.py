"""`streams.runtime.batches` on the real broker: the records a worker sends as one batch per
topic partition arrive as `Producer.send` would have put them there (partition, order,
key, value, timestamp), and a batch's delivery names its last record's offset."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer, TopicPartition

from streams.partitioning import key_partition
from streams.runtime.batches import send_batches
from streams.runtime.changelog import partitioner
from tests.integration.harness import Namespace


def read(bootstrap: str, topic: str) -> dict[int, list[tuple[bytes | None, bytes | None, int, int]]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=1500)
    try:
        parts = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: dict[int, list[tuple[bytes | None, bytes | None, int, int]]] = {}
        for m in consumer:
            out.setdefault(m.partition, []).append((m.key, m.value, m.offset, m.timestamp))
        return out
    finally:
        consumer.close()


def test_batches_land_as_single_sends_would(ns: Namespace):
    topic = ns.topic("checkpoint.code-changes")
    keyed = [(topic, None, f"person-{n % 7}".encode(), f"v{n}".encode()) for n in range(60)]
    pinned = [(topic, 3, b"person-x", b"pinned-1"), (topic, 3, None, b"pinned-2")]
    big = [(topic, 1, b"big", b"x" * 20_000), (topic, 1, b"small", b"after-big")]
    records = [*keyed[:30], *pinned, *keyed[30:], *big]

    async def send() -> list[tuple[str, int, int, int]]:
        # a 16 KiB batch size: the 20 KB value and what follows it need batches of their own
        aio = AIOKafkaProducer(bootstrap_servers=ns.bootstrap, partitioner=partitioner,
                               max_batch_size=16_384, acks=-1)
        await aio.start()
        try:
            batches = await send_batches(SimpleNamespace(_ensure_producer=lambda: aio), records)
            await asyncio.gather(*(b.future for b in batches))
            return [(b.topic, b.partition, b.count, b.last_offset()) for b in batches]
        finally:
            await aio.stop()

    before = int(time.time() * 1000)
    batches = asyncio.run(send())
    after = int(time.time() * 1000)
    landed = read(ns.bootstrap, topic)
    expected: dict[int, list[tuple[bytes | None, bytes | None]]] = {}
    for _, partition, key, value in records:
        chosen = partition if partition is not None else key_partition(key, 4)
        expected.setdefault(chosen, []).append((key, value))
    assert {p: [(k, v) for k, v, *_ in rows] for p, rows in landed.items()} == expected
    assert all(before <= stamp <= after for rows in landed.values() for *_, stamp in rows)
    # one batch per partition, but the big record needs its own and what follows another
    keyed_on_1 = any(key_partition(key, 4) == 1 for _, _, key, _ in keyed)
    assert sorted(p for _, p, _, _ in batches) == sorted([*expected, 1, *([1] if keyed_on_1 else [])])
    assert sum(count for *_, count, _ in batches) == len(records)
    for _, partition, _, last in batches:
        assert last in {offset for _, _, offset, _ in landed[partition]}
    assert max(last for _, p, _, last in batches if p == 3) == landed[3][-1][2]
