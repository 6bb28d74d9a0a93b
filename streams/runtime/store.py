"""A RocksDB table store that writes where the row's partition says, within one memory
budget for the whole worker.

Where a row goes: faust-streaming's RocksDB store files every write under the partition
of the *current event* and asserts that there is one (`faust/stores/rocksdb.py`,
`_set`). The person table is written from the worker's own batches and timers, with
`use_partitioner=True` (changelog partition = murmur2(key), partition rows name theirs:
see `streams.runtime.changelog`), so the store must put a key in the same partition its
changelog record goes to; otherwise the worker that later owns that partition would not
find the row on disk.

How much memory: Faust opens one database per table partition, each with its own 2 GiB
block cache and up to three 64 MiB memtables (`RocksDBOptions` defaults), so a worker
owning 12 partitions of two tables may grow to tens of GiB and be killed by its memory
limit long before that. Here every database of the worker shares one LRU block cache of
`CHECKPOINT_ROCKSDB_MEMORY_BYTES`, the memtables are charged to that cache (RocksDB's
write buffer manager, half of the budget at most, then flushed), and index and filter
blocks live in it too: RocksDB's memory is one number (docs/operations.md, "Memory").

Upstream: no issue tracks either; tests/unit/test_runtime_pins.py fails when an upgrade
changes `Store._set`, `_key_index`, `_db_for_partition` or how `Store.__init__` builds
`rocksdb_options`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from faust.stores import STORES
from faust.stores.rocksdb import RocksDBOptions
from faust.stores.rocksdb import Store as FaustRocksStore

from .changelog import row_partition

#: the budget when a table is given none (the worker always gives one: settings)
DEFAULT_MEMORY_BYTES = 256 * 2**20


@cache
def shared_memory(budget: int) -> tuple[Any, Any]:
    """The process's block cache and write buffer manager for `budget` bytes."""
    import rocksdict

    block_cache = rocksdict.Cache(budget)
    manager = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
        budget // 2, False, block_cache)
    return block_cache, manager


class BoundedOptions(RocksDBOptions):
    """Faust's options, every database's memory drawn from `shared_memory(budget)`."""

    def __init__(self, memory_bytes: int = DEFAULT_MEMORY_BYTES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.memory_bytes = memory_bytes
        # a memtable flushes at 1/16 of the budget (Faust: 64 MiB each, three of them)
        self.write_buffer_size = max(memory_bytes // 16, 2**20)
        self.max_write_buffer_number = 2

    def as_options(self) -> Any:
        options = super().as_options()
        if not self.use_rocksdict:  # python-rocksdb (RocksDB 6) is not what we ship
            return options
        import rocksdict

        block_cache, manager = shared_memory(self.memory_bytes)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(block_cache)
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(manager)
        return options


class Store(FaustRocksStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rocksdb_options = BoundedOptions(**(self.options or {}),
                                              use_rocksdict=self.use_rocksdict)

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
