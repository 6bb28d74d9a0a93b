"""The bench's scale section (issue 17): the person rows it writes are the replay's states
under new ids of the same length, and the report prints its rows against the targets."""

from __future__ import annotations

import orjson

from bench.run import markdown
from bench.scale import ID_WIDTH, rows
from streams.engine import PersonState


def test_copied_states_are_the_templates_under_new_ids_of_the_same_size() -> None:
    template = PersonState("p23d43jy7uuwz4b3f", visits={"610113": 738000})
    raw = orjson.dumps(template)
    copies = list(rows([(template.person, raw)], 3))
    assert len({key for key, _ in copies}) == 3
    for key, value in copies:
        state = PersonState.from_json(orjson.loads(value))
        assert state.person == key.decode() and len(key) == ID_WIDTH
        assert len(value) == len(raw) and state.visits == template.visits


def test_the_report_prints_the_scale_rows_against_their_targets() -> None:
    scale = {"persons": 100_000, "takeover_seconds": 30.9, "restore_records_per_second": 3239,
             "restart_seconds": 10.3, "kill9_restart_seconds": 16.9, "record_bytes_mean": 1364,
             "record_bytes_p99": 2617, "disk_bytes_per_person": 574,
             "rss_mb_per_million_persons": 2522, "rss_mb_idle": 81.8, "rss_mb": 334.0,
             "rss_mb_after_restart": 208.7}
    text = markdown({"sections": {"scale": scale}, "started": "t", "quick": True,
                     "machine": {"cpus": 2, "load_before": "0", "commit": "x"}})
    assert "| takeover, empty disk, 100,000 persons | 30.9 s to ready |" in text
    assert "10.3 s (SIGTERM) / 16.9 s (kill -9)" in text
    assert "1,364 B mean, p99 2,617 B" in text and "2,522 MB" in text
