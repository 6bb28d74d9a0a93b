"""The live pipeline on the real broker agrees with the offline replay, event for event."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from streams.recording import read_jsonl
from streams.replay import Replay, read_recording
from streams.runtime.changelog import row_partition
from tests.integration.harness import comparable

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def replay_outputs(records):
    import orjson

    parsed, dead = read_recording(orjson.dumps(r) for r in records)
    assert not dead
    return Replay().run(parsed)


@pytest.mark.parametrize("name", ["taiyuan-0820", "z22", "pingyao", "yellow-tests",
                                  "shanxi-missed-test"])
def test_live_equals_replay(name, ns, workers):
    records = read_jsonl(SCENARIOS / f"{name}.jsonl")
    workers()
    ns.feed(records)
    live = ns.read()
    expected = replay_outputs(records)
    assert Counter(r["topic"] for r in live) == Counter(r["topic"] for r in expected)
    assert comparable(live) == comparable(expected)


def _assert_changelog_matches_store(ns, data_dir: Path) -> None:
    """The worker sends the person table's changelog records itself (`ChangelogWriter`):
    each partition's RocksDB file must hold the rows of its changelog partition (persons in
    murmur2's partition, a partition's counts in the partition they name) and remember the
    offset of the last one, where recovery resumes."""
    from kafka import KafkaConsumer, TopicPartition
    from rocksdict import AccessType, Options, Rdict

    topic = f"{ns.app_id}-persons-changelog"
    consumer = KafkaConsumer(bootstrap_servers=ns.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000)
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(parts)
    latest: dict[int, dict[bytes, bytes]] = {}
    last: dict[int, int] = {}
    for message in consumer:
        latest.setdefault(message.partition, {})[message.key] = message.value
        last[message.partition] = message.offset
    consumer.close()
    assert latest, "no changelog records"
    for partition, rows in latest.items():
        assert {row_partition(key, 4) for key in rows} == {partition}
        [path] = data_dir.rglob(f"persons-{partition}.db")
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            assert db[b"__faust\0offset__"] == str(last[partition]).encode()
            assert {k: db[k] for k in rows} == rows
        finally:
            db.close()


def test_rocksdb_store_keeps_state_across_a_restart(ns, workers):
    """Production configuration: tables in RocksDB (rocksdict) on local disk."""
    records = read_jsonl(SCENARIOS / "shanxi-missed-test.jsonl")
    first = workers(name="rocks", env={"CHECKPOINT_STORE": "rocksdb://"})
    ns.feed(records[:3])  # area, arrival, day-1 result
    first.stop()
    _assert_changelog_matches_store(ns, Path(first.env["CHECKPOINT_DATA_DIR"]))
    workers(name="rocks-again", env={"CHECKPOINT_STORE": "rocksdb://",
                                     "CHECKPOINT_DATA_DIR": first.env["CHECKPOINT_DATA_DIR"]})
    ns.feed(records[3:])
    assert comparable(ns.read()) == comparable(replay_outputs(records))
