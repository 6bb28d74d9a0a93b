"""Retention (issue 16): a person's state is deleted once nothing in it can matter any
more, plus a grace; the same rule in replay as live (docs/privacy.md)."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from streams.engine.timeutil import format_ts, parse_ts
from streams.pipeline.core import DEFAULT_RETENTION_GRACE
from streams.replay import Replay, read_recording
from tests.builders import scan

DAY = 86_400_000
REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def record(value: dict, topic: str = "checkpoint.scans.station") -> dict:
    return {"topic": topic, "key": value.get("person"), "value": value}


def replay(*records: dict, grace: int | None = DEFAULT_RETENTION_GRACE) -> Replay:
    parsed, rejected = read_recording(orjson.dumps(r) for r in records)
    run = Replay(retention_grace=grace)
    run.run(parsed, dead_letters=rejected)
    return run


#: an arrival from inside the province: no rule, no control, only stays
QUIET = scan("ret-quiet-01", "2022-08-21T10:00:00", "140106", [("140702", "2022-08-20")])
#: a yellow code with no test days: a companion's "7+3" home health monitoring
COMPANION = {"id": "nt-ret-companion", "event_time": "2022-08-21T12:00:00+08:00",
             "kind": "companion", "person": "ret-yellow-01", "area": "140106"}


def test_a_quiet_person_is_deleted_after_the_longest_lookback_the_reports_and_the_grace():
    run = replay(record(QUIET))
    state = run.states["ret-quiet-01"]
    assert run.policies.max_lookback_days == 14
    # the scan day's stay leaves every 14-day window on 09-05; then two days of grace
    assert format_ts(state.matters_until(14)) == "2022-09-05T00:00:00+08:00"
    due = run.core.due(state)
    assert format_ts(due) == "2022-09-07T00:00:00+08:00"
    run.advance_to(due - 1)
    assert "ret-quiet-01" in run.states
    run.advance_to(due)
    assert "ret-quiet-01" not in run.states and run.deleted == {"ret-quiet-01": due}
    assert [o for o in run.outputs if o["topic"] != "checkpoint.dead-letters"] == []


def test_a_person_under_control_is_kept_until_released_then_the_rule_applies():
    run = replay(record(COMPANION, "checkpoint.contact-notices"))
    [control] = run.states["ret-yellow-01"].controls
    assert run.states["ret-yellow-01"].matters_until(14) is None  # an active control matters
    run.advance_to(control.due)
    state = run.states["ret-yellow-01"]
    assert state.controls == [] and state.colour == "green"
    released = [o["value"]["kind"] for o in run.outputs if o["topic"] == "checkpoint.code-changes"]
    assert released == ["assign", "release"]
    assert state.matters_until(14) is not None
    run.advance_to(parse_ts("2022-12-31T00:00:00+08:00"))
    assert "ret-yellow-01" not in run.states


def test_a_held_release_keeps_the_state():
    """A monitoring control whose tests were missed holds its release: kept for ever."""
    arrival = scan("ret-held-01", "2022-08-21T10:00:00", "140106", [("320102", "2022-08-20")])
    run = replay(record(arrival))
    run.advance_to(parse_ts("2023-08-21T00:00:00+08:00"))
    state = run.states["ret-held-01"]
    assert state.controls and state.controls[0].hold is not None
    assert state.matters_until(14) is None


def test_an_unresolved_positive_keeps_the_state():
    result = {"id": "rs-ret-pos", "kind": "single", "person": "ret-pos-01", "sample": "S-1",
              "collected_at": "2022-08-21T08:00:00+08:00",
              "event_time": "2022-08-21T20:00:00+08:00", "result": "positive"}
    run = replay(record(result, "checkpoint.pcr-results"))
    run.advance_to(parse_ts("2023-08-21T00:00:00+08:00"))
    assert run.states["ret-pos-01"].positive == "rs-ret-pos"


def test_a_person_seen_again_before_deletion_moves_it_on():
    later = scan("ret-quiet-01", "2022-09-01T10:00:00", "140106", [("140702", "2022-08-31")])
    run = replay(record(QUIET), record(later))
    assert format_ts(run.core.due(run.states["ret-quiet-01"])) == "2022-09-18T00:00:00+08:00"


def test_a_person_deleted_and_seen_again_starts_afresh():
    again = scan("ret-quiet-01", "2022-10-01T10:00:00", "140106", [("140702", "2022-09-30")])
    run = replay(record(QUIET), record(again))
    state = run.states["ret-quiet-01"]
    assert list(state.visits) == ["140702", "140106"]
    assert state.seen == ["scan:" + again["id"]]


def test_retention_off_keeps_every_state():
    run = replay(record(QUIET), grace=None)
    run.advance_to(parse_ts("2025-01-01T00:00:00+08:00"))
    assert "ret-quiet-01" in run.states and run.core.due(run.states["ret-quiet-01"]) is None


@pytest.mark.parametrize(("until", "found"), [("2022-09-06T23:59:00+08:00", True),
                                              ("2022-09-07T00:00:00+08:00", False)])
def test_status_after_the_grace_finds_nothing(tmp_path, until, found):
    recording = tmp_path / "quiet.jsonl"
    recording.write_bytes(orjson.dumps(record(QUIET)) + b"\n")
    done = subprocess.run([sys.executable, "-m", "streams.cli", "status", "ret-quiet-01",
                           "--recording", str(recording), "--until", until],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    if found:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 3
        assert done.stderr.strip() == (
            "error: person ret-quiet-01's state was deleted at 2022-09-07T00:00:00+08:00: "
            "nothing in it could matter any more (docs/privacy.md)")


def test_the_grace_is_a_setting(tmp_path):
    recording = tmp_path / "quiet.jsonl"
    recording.write_bytes(orjson.dumps(record(QUIET)) + b"\n")
    import os

    done = subprocess.run([sys.executable, "-m", "streams.cli", "status", "ret-quiet-01",
                           "--recording", str(recording), "--until", "2022-09-07T00:00:00+08:00"],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CHECKPOINT_RETENTION_GRACE_DAYS": "-1"})
    assert done.returncode == 0, done.stderr
