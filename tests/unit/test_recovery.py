"""After a rebalance the worker rebuilds its indexes, due times and daily counts from the
person table (`Live.recovered`): in one pass over the table, copying nothing, with the
states in flight and the deleted ones seen as they are now."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.structs import TopicPartition

from streams import topics as T
from streams.live import DayCounts, Live, counts_key
from streams.partitioning import key_partition
from streams.replay import replay_file
from streams.runtime.changelog import partition_row_key
from streams.runtime.states import encode
from streams.settings import Settings

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


class PassCountingTable(dict):
    """A person table that counts the passes made over it and what was listed whole."""

    def __init__(self) -> None:
        super().__init__()
        self.passes = 0

    def items(self) -> Any:
        self.passes += 1
        return super().items()


def live_on(table: PassCountingTable, mine: set[int]) -> Live:
    settings = Settings.from_env({})
    topic = settings.topic(T.STATION_SCANS)
    owned = {TopicPartition(topic, p) for p in mine}
    app = SimpleNamespace(assignor=SimpleNamespace(assigned_actives=lambda: owned))
    return Live(app, settings, table)


@pytest.mark.parametrize("owned", ["every other partition", "every partition"])
def test_recovery_rebuilds_what_the_owned_rows_say_in_one_pass_over_the_table(owned: str):
    states = replay_file(SCENARIOS / "z22.jsonl").states
    partitions = Settings.from_env({}).partitions
    mine = set(range(0, partitions, 2 if owned == "every other partition" else 1))
    table = PassCountingTable()
    for person, state in states.items():
        table[person.encode()] = encode(state)
    table[partition_row_key(0, "reports")] = orjson.dumps({"closed": "2022-08-18"})
    table[partition_row_key(1, "reports")] = orjson.dumps({"closed": "2022-08-17"})
    table[counts_key(0, 738384)] = orjson.dumps(DayCounts().to_json())
    live = live_on(table, mine)

    owned = sorted(p for p in states if key_partition(p.encode(), partitions) in mine)
    controlled = [p for p in owned if states[p].controls]
    assert len(owned) > 10 and controlled
    in_flight, deleted = controlled[0], owned[1]
    live.states.decided(replace(states[in_flight], controls=[]))  # released, not stored yet
    live.states.gone(deleted)  # deleted, its tombstone not written yet

    asyncio.run(live.recovered())

    assert table.passes == 1, "the table is read once"
    expected = {p: tuple(c.colour for c in states[p].controls)
                for p in owned if p not in (in_flight, deleted)}
    expected[in_flight] = ()
    assert live.colours == expected
    assert live.due._due == {p: due for p in expected
                             if (due := live.core.due(live.states.get(p))) is not None}
    assert deleted not in live.due._due
    assert live.closed[0] == 738385 and set(live.counts) == {0}
    assert set(live.closed) == ({0} if 1 not in mine else {0, 1})
    assert set(live.counts[0].days) == {738384}
