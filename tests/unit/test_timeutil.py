"""Instants rendered by arithmetic are `datetime.isoformat`'s text, to the millisecond."""

from __future__ import annotations

import random
from datetime import datetime

from streams.engine.timeutil import CST, format_ts


def _isoformat(ms: int) -> str:
    moment = datetime.fromtimestamp(ms // 1000, CST).replace(microsecond=ms % 1000 * 1000)
    return moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")


def test_format_ts_is_isoformat_at_the_edges_and_at_200k_random_instants():
    draw = random.Random(8)
    edges = [0, 1, 999, 1000, 59_999, 60_000, 3_599_999, 57_599_999, 57_600_000,
             86_399_999, 1_660_579_199_999, 1_660_579_200_000, -1, -1000, -86_400_001]
    whole = [draw.randrange(0, 4_102_444_800) * 1000 for _ in range(50_000)]
    any_ms = [draw.randrange(0, 4_102_444_800_000) for _ in range(150_000)]
    for ms in [*edges, *whole, *any_ms]:
        assert format_ts(ms) == _isoformat(ms), ms
