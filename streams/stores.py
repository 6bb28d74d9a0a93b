"""A RocksDB table store that writes where the key partitioner says.

faust-streaming's RocksDB store files every write under the partition of the *current
event* and asserts that there is one. Our person tables use `use_partitioner=True`
(writes from timers and batched agents, changelog partition = murmur2(key)), so the
store must put a key in the same partition its changelog record goes to; otherwise a
worker that later owns that partition would not find the row on disk.
"""

from __future__ import annotations

from faust.stores import STORES
from faust.stores.rocksdb import Store as FaustRocksStore

from .changelog import key_partition


class Store(FaustRocksStore):
    def _partition_of(self, key: bytes) -> int:
        partitions = self.table.partitions or self.app.conf.topic_partitions
        return key_partition(key, partitions)

    def _set(self, key: bytes, value: bytes | None) -> None:
        if not self.table.use_partitioner:
            super()._set(key, value)
            return
        partition = self._partition_of(key)
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)


def register() -> None:
    """Make `rocksdb://` resolve to this store (the URL users configure stays the same)."""
    STORES.aliases["rocksdb"] = f"{__name__}:Store"
