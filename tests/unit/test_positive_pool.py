"""A positive pooled tube turns every member red, wherever the members were last seen
(issue 15): under every notice a positive result is red at once (Pingyao 8·19: all 40
members of two tubes red "第一时间")."""

from __future__ import annotations

import orjson

from streams.replay import Replay, read_recording


def tube(members: int, **extra) -> dict:
    return {"topic": "checkpoint.pcr-results", "key": "TUBE-9", "value": {
        "id": "rs-tube-9", "kind": "pooled", "tube": "TUBE-9", "result": "positive",
        "collected_at": "2022-08-19T08:00:00+08:00", "event_time": "2022-08-19T20:00:00+08:00",
        "members": [{"person": f"p-pool-{n:02d}", "sample": f"S-9-{n}"} for n in range(members)],
        **extra}}


def run(*records: dict) -> Replay:
    parsed, rejected = read_recording(orjson.dumps(r) for r in records)
    replay = Replay()
    replay.run(parsed, dead_letters=rejected)
    return replay


def test_members_never_scanned_with_no_lab_area_turn_red_under_the_home_jurisdiction():
    replay = run(tube(20))
    changes = [o["value"] for o in replay.outputs if o["topic"] == "checkpoint.code-changes"]
    red = {c["person"] for c in changes if c["to"] == "red"}
    assert red == {f"p-pool-{n:02d}" for n in range(20)}
    assert {c["policy"]["id"] for c in changes} == {"shanxi-2022-01-01-baseline"}
    [alert] = [o["value"] for o in replay.outputs if o["topic"] == "checkpoint.alerts"]
    assert "all 20 members turn red" in alert["detail"]["en"]
    assert len(red) == 20  # the alert says what was done
    assert replay.tally.statuses["no_policy"] == 0


def test_the_place_the_sample_was_taken_decides_before_the_home_jurisdiction():
    replay = run(tube(3, lab_area="140105"))  # Taiyuan: its own policy
    changes = [o["value"] for o in replay.outputs if o["topic"] == "checkpoint.code-changes"]
    assert len({c["person"] for c in changes if c["to"] == "red"}) == 3
    assert {c["policy"]["id"] for c in changes} != {"shanxi-2022-01-01-baseline"}
