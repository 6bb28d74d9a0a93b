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
