"""The live pipeline on the real broker agrees with the offline replay, event for event."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from streams.recording import read_jsonl
from streams.replay import Replay, read_recording
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


def test_rocksdb_store_keeps_state_across_a_restart(ns, workers):
    """Production configuration: tables in RocksDB (rocksdict) on local disk."""
    records = read_jsonl(SCENARIOS / "shanxi-missed-test.jsonl")
    first = workers(name="rocks", env={"CHECKPOINT_STORE": "rocksdb://"})
    ns.feed(records[:3])  # area, arrival, day-1 result
    first.stop()
    workers(name="rocks-again", env={"CHECKPOINT_STORE": "rocksdb://",
                                     "CHECKPOINT_DATA_DIR": first.env["CHECKPOINT_DATA_DIR"]})
    ns.feed(records[3:])
    assert comparable(ns.read()) == comparable(replay_outputs(records))
