"""Offline replay: scenario recordings give the expected events, deterministically."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from streams.replay import dump_jsonl, read_recording, replay_file

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def changes(run, kind=None):
    return [o["value"] for o in run.outputs if o["topic"] == "checkpoint.code-changes"
            and (kind is None or o["value"]["kind"] == kind)]


def alerts(run):
    return Counter(o["value"]["kind"] for o in run.outputs if o["topic"] == "checkpoint.alerts")


def test_z22_all_78_passengers_to_centralized_isolation():
    run = replay_file(SCENARIOS / "z22.jsonl")
    exposed = [e for e in changes(run, "assign") if e["rule"] == "T-exposed-trip"]
    assert len(exposed) == 78 and {e["to"] for e in exposed} == {"red"}
    assert {e["measure"]["phases"][0]["kind"] for e in exposed} == {"centralized_isolation"}
    assert all(e["caused_by"][0] == "nt-z22-exposed" for e in exposed)
    assert alerts(run)["exposed_trip"] == 1 and alerts(run)["positive_result"] == 7
    assert Counter(e["rule"] for e in changes(run, "assign"))["T-close-contact"] == 3
    assert run.tally.reconciles() and run.tally.dead_letters == 0


def test_pingyao_two_pooled_tubes_turn_all_40_members_red_at_once():
    run = replay_file(SCENARIOS / "pingyao.jsonl")
    red = changes(run, "assign")
    assert len({e["person"] for e in red}) == 40 and {e["rule"] for e in red} == {"T-positive"}
    by_tube = Counter(e["caused_by"][0] for e in red)
    assert by_tube == {"rs-py-tube-1": 20, "rs-py-tube-2": 20}
    assert alerts(run) == {"positive_pool": 2}


def test_taiyuan_0820_travellers():
    run = replay_file(SCENARIOS / "taiyuan-0820.jsonl")
    got = {e["person"]: (e["kind"], e["to"], e["mark"], e["rule"]) for e in changes(run)}
    assert got == {
        "ty-tibet-traveller": ("assign", "red", "red", "TY0820-R2-tibet"),
        "ty-hainan-traveller": ("mark", "green", "blue", "TY0820-R4-hainan"),
        "ty-medium-traveller": ("assign", "yellow", "yellow", "TY0820-R3-medium"),
        "ty-high-traveller": ("assign", "red", "red", "TY0820-R1-high"),
        "ty-beijing-traveller": ("monitor", "green", None, "TY0820-R5-outside-province"),
    }


def test_yellow_released_after_two_negatives_within_72h_only():
    run = replay_file(SCENARIOS / "yellow-tests.jsonl")
    releases = {e["person"]: e["event_time"] for e in changes(run, "release")}
    assert releases == {"yellow-in-window": "2022-04-12T18:00:00+08:00"}
    assert alerts(run) == {"hold_release": 1}


def test_shanxi_medium_traveller_misses_day_4_and_is_released_on_day_7():
    run = replay_file(SCENARIOS / "shanxi-missed-test.jsonl", until=None)
    events = [(o["value"]["kind"], o["value"]["event_time"]) for o in run.outputs]
    assert events == [
        ("assign", "2022-08-21T10:00:00+08:00"),
        ("missed_test", "2022-08-26T00:00:00+08:00"),
        ("release", "2022-08-28T15:00:00+08:00"),
    ]


@pytest.mark.parametrize("name", ["z22", "pingyao", "taiyuan-0820", "yellow-tests",
                                  "shanxi-missed-test"])
def test_replay_is_byte_for_byte_deterministic(name):
    first = dump_jsonl(replay_file(SCENARIOS / f"{name}.jsonl").outputs)
    second = dump_jsonl(replay_file(SCENARIOS / f"{name}.jsonl").outputs)
    assert first == second and first


def test_until_fires_releases_past_the_last_record():
    from streams.engine.timeutil import parse_ts

    run = replay_file(SCENARIOS / "taiyuan-0820.jsonl", until=parse_ts("2022-09-01T00:00:00+08:00"))
    released = {e["person"] for e in changes(run, "release")}
    assert "ty-beijing-traveller" not in released  # missed its tests: held, alerted
    assert alerts(run)["missed_test"] >= 1


def test_bad_lines_become_dead_letters_and_the_run_goes_on(tmp_path):
    lines = [
        b"not json at all\n",
        b'{"topic": "checkpoint.scans.station", "key": "x", "value": {"id": "a"}}\n',
        b'{"topic": "nope", "key": "x", "value": {"id": "b", "event_time": "2022-08-21T10:00:00+08:00"}}\n',
        b'{"topic": "checkpoint.scans.station", "key": "x", "value": {"id": "c", "person": "110101199003077777", "event_time": "2022-08-21T10:00:00+08:00"}}\n',
    ]
    records, rejected = read_recording(lines)
    assert [r.rejected.reason for r in rejected] == ["malformed_json", "schema_violation",
                                                     "raw_identity_number"]
    assert len(records) == 1
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"".join(lines))
    run = replay_file(path)
    dead = [o for o in run.outputs if o["topic"] == "checkpoint.dead-letters"]
    assert [d["value"]["reason"] for d in dead] == ["malformed_json", "schema_violation",
                                                    "unknown_topic", "raw_identity_number"]
    assert all("110101199003077777" not in orjson.dumps(d).decode() for d in dead)
    by_reason = {d["value"]["reason"]: d for d in dead}
    assert by_reason["raw_identity_number"]["value"]["original"] is None
    # where each came from, and when: the line's topic and the event time reached there
    assert by_reason["schema_violation"]["key"] == "checkpoint.scans.station"
    assert by_reason["schema_violation"]["value"]["source"] == {
        "topic": "checkpoint.scans.station", "partition": None, "offset": None, "line": 2}
    assert by_reason["unknown_topic"]["value"]["source"]["topic"] == "nope"
    assert {d["value"]["received_at"] for d in dead} == {"2022-08-21T10:00:00+08:00"}
    assert run.tally.reconciles() and run.tally.dead_letters == 4


def test_cli_replay_prints_events_and_documents_the_format(tmp_path):
    out = tmp_path / "out.jsonl"
    done = subprocess.run([sys.executable, "-m", "streams.cli", "replay",
                           str(SCENARIOS / "taiyuan-0820.jsonl"), "--out", str(out)],
                          capture_output=True, text=True, check=True)
    assert "7 inputs = 7 processed + 0 dead letters (reconciled)" in done.stderr
    assert len(out.read_bytes().splitlines()) == 5
    helped = subprocess.run([sys.executable, "-m", "streams.cli", "replay", "--help"],
                            capture_output=True, text=True, check=True).stdout
    for phrase in ('{"topic"', "event-time order", "--until", "dead letters"):
        assert phrase in helped


def test_cli_replay_missing_file_is_one_clear_line():
    done = subprocess.run([sys.executable, "-m", "streams.cli", "replay", "/no/such.jsonl"],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: no such file: /no/such.jsonl"
