"""A RocksDB table store that writes where the row's partition says.

faust-streaming's RocksDB store files every write under the partition of the *current
event* and asserts that there is one (`faust/stores/rocksdb.py`, `_set`). The person
table is written from the worker's own batches and timers, with `use_partitioner=True`
(changelog partition = murmur2(key), partition rows name theirs: see
`streams.runtime.changelog`), so the store must put a key in the same partition its
changelog record goes to; otherwise the worker that later owns that partition would not
find the row on disk.

Upstream: no issue tracks it; tests/unit/test_runtime_pins.py fails when an upgrade
changes `Store._set`, `_key_index` or `_db_for_partition`.
"""

from __future__ import annotations

from faust.stores import STORES
from faust.stores.rocksdb import Store as FaustRocksStore

from .changelog import row_partition


class Store(FaustRocksStore):
    def _partition_of(self, key: bytes) -> int:
        partitions = self.table.partitions or self.app.conf.topic_partitions
        return row_partition(key, partitions)

    def _set(self, key: bytes, value: bytes | None) -> None:
        if not self.table.use_partitioner:
            super()._set(key, value)
            return
        partition = self._partition_of(key)
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)


def install() -> None:
    """Make `rocksdb://` resolve to this store (the URL users configure stays the same)."""
    STORES.aliases["rocksdb"] = f"{__name__}:Store"
