"""RocksDB's memory in a worker is one budget (streams.runtime.store): every partition's
database draws its block cache and its memtables from the same cache."""

from __future__ import annotations

import os

import pytest

from streams.runtime.store import BoundedOptions, shared_memory

rocksdict = pytest.importorskip("rocksdict")

MIB = 2**20


def _fill(db, rows: int, seed: int) -> None:
    for n in range(rows):
        db[f"person-{seed}-{n:07d}".encode()] = os.urandom(600)


def test_the_databases_of_a_worker_share_one_cache_with_their_memtables(tmp_path):
    budget = 24 * MIB
    options = BoundedOptions(memory_bytes=budget, use_rocksdict=True)
    assert (options.write_buffer_size, options.max_write_buffer_number) == (budget // 16, 2)
    cache, manager = shared_memory(budget)
    assert shared_memory(budget)[0] is cache  # one per process and budget
    assert manager.get_buffer_size() == budget // 2
    dbs = [options.open(tmp_path / f"p{partition}") for partition in range(4)]
    try:
        for partition, db in enumerate(dbs):
            _fill(db, 8_000, partition)  # ~5 MB each: 20 MB of memtables without a budget
        # the memtables are charged to the shared cache, which stays within the budget
        assert 0 < manager.get_usage() <= budget
        assert 0 < cache.get_usage() <= budget
        for partition, db in enumerate(dbs):
            db.flush()
            assert len(db[f"person-{partition}-0000001".encode()]) == 600
        assert cache.get_usage() <= budget
    finally:
        for db in dbs:
            db.close()


def test_faust_alone_gives_each_database_its_own_large_cache():
    """What the budget replaces: Faust's defaults per partition's database."""
    from faust.stores.rocksdb import RocksDBOptions

    faust = RocksDBOptions(use_rocksdict=True)
    assert faust.block_cache_size == 2 * 1024**3
    assert faust.write_buffer_size * faust.max_write_buffer_number == 192 * MIB
