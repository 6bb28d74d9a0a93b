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


def _alert_and_changes(replay: Replay) -> tuple[str, list[dict]]:
    [alert] = [o["value"] for o in replay.outputs if o["topic"] == "checkpoint.alerts"]
    changes = [o["value"] for o in replay.outputs if o["topic"] == "checkpoint.code-changes"]
    return alert["detail"]["en"], changes


def test_a_place_with_no_policy_for_positives_is_said_not_claimed():
    """The alert says only what the members' decisions do: a sample taken where no policy
    is in force turns nobody red, and the alert says so (each member counts no_policy)."""
    detail, changes = _alert_and_changes(run(tube(4, lab_area="650102")))  # Urumqi
    assert changes == []
    assert detail == ("Pooled tube TUBE-9 positive, but no policy for positive results is in "
                      "force where it was taken (650102): its 4 members are not turned red")


def test_no_home_policy_says_only_arrivals_decide():
    from streams.engine import load_policy_dir
    from streams.pipeline.core import CoreConfig, Pipeline

    parsed, rejected = read_recording([orjson.dumps(tube(2))])
    replay = Replay()
    replay.core = Pipeline(load_policy_dir(), config=CoreConfig(home="65"))
    replay.run(parsed, dead_letters=rejected)
    detail, changes = _alert_and_changes(replay)
    assert changes == []
    assert detail.startswith("Pooled tube TUBE-9 positive: of its 2 members only those whose last "
                             "arrival's policy decides positive results turn red")
