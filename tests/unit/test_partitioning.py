"""Kafka's default partitioner as the pipeline core computes it (streams/partitioning.py)."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from streams.partitioning import key_partition, murmur2


def test_murmur2_is_kafkas_on_any_bytes() -> None:
    draw = random.Random(7)
    for _ in range(5_000):
        data = bytes(draw.randrange(256) for _ in range(draw.randrange(0, 48)))
        assert murmur2(data) == kafka_python_murmur2(data)


def test_partitions_are_aiokafkas_default_ones() -> None:
    default = DefaultPartitioner()
    for n in range(500):
        key = f"person-{n}-旅客".encode()
        for count in (1, 4, 12):
            assert key_partition(key, count) == default(key, list(range(count)), list(range(count)))
