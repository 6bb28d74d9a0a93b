"""A partition's daily counts row: built from the areas' kept encodings, the same bytes as
encoding the whole day, after every change (streams.live.DayCounts.row)."""

from __future__ import annotations

import random
from collections import Counter

import orjson

from streams.live import DayCounts, PartitionCounts
from streams.reports import AreaDay


def _cell(draw: random.Random) -> AreaDay:
    return AreaDay(station=draw.randrange(3), highway=draw.randrange(3),
                   assigned=Counter({draw.choice(("red", "yellow")): 1}),
                   by_rule=Counter({f"R{draw.randrange(4)}": 1}),
                   alerts=Counter({"missed_test": draw.randrange(2)}))


def test_the_row_is_the_days_json_after_every_change():
    draw = random.Random(3)
    counts = PartitionCounts()
    areas = [f"14{n:04d}" for n in range(0, 400, 7)]
    for offset in range(600):
        day = 738_000 + draw.randrange(3)
        cells = {(draw.choice(areas), day): _cell(draw) for _ in range(draw.randrange(1, 4))}
        counts.add(cells, "checkpoint.station-scans", offset, f"p{offset}")
        for written_day in sorted(counts.unwritten):
            day_counts = counts.days[written_day]
            row = day_counts.row()
            assert row == orjson.dumps(day_counts.to_json())
            back = DayCounts.from_json(orjson.loads(row))
            assert back.cells == day_counts.cells and back.row() == row
        counts.rows(0)
