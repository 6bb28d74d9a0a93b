"""Which partition a key belongs to: Kafka's default partitioner (murmur2), as the Java
client, aiokafka, kafka-python and Faust's tables compute it.

Every person's state lives on murmur2(person) mod partitions; producers at the edge may
use any partitioner (librdkafka's CRC32, an explicit partition), and the pipeline core
forwards what arrives elsewhere. Pure and Kafka-free, so that the core can ask it;
tests/unit/test_partitioning.py holds it equal to kafka-python's implementation.
"""

from __future__ import annotations

import functools

_SEED, _M, _MASK = 0x9747B28C, 0x5BD1E995, 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as `org.apache.kafka.common.utils.Utils.murmur2` computes it."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length % 4
    base = length - tail
    if tail >= 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


@functools.lru_cache(maxsize=1 << 18)
def key_partition(key: bytes, partitions: int) -> int:
    """The partition of `key` among `partitions` (cached: a raise asks it for every recent
    visitor, and persons come back)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
