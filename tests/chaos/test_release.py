"""A pending release survives a worker crash and fires on time (wall clock).

Controls last whole days, so the test dates its scans a day minus a few seconds in the
past: with a one-day control from a test policy (CHECKPOINT_POLICY_DIR; policies choose
by checkpoint jurisdiction and valid_from, so it governs Shanxi from 2022) the release
falls due seconds from now. The worker is SIGKILLed while the releases are pending.

"On time" is measured on the event itself: a release's event_time is its due time and
emitted_at is when the worker's timer fired it. Allowed lateness = the timer interval
(the timer looks at the due times once per interval) + a tolerance of 5 s: the event
loop of a worker on a busy 2-core CI machine wakes timers late (mode logs "Timer ...
woke up too late" drifts of ~0.5-1.5 s under load), and a release due while the worker
was down cannot fire before the worker is back, so for those the clock starts when the
restarted worker reports ready. Early is never allowed.
"""

from __future__ import annotations

import time
from pathlib import Path

from streams.engine.timeutil import DAY_MS, format_date, format_ts, local_day, parse_ts
from tests.chaos.conftest import report_line

TIMER_INTERVAL = 1.0
TOLERANCE = 5.0

POLICY = """\
id: release-test
version: 1
title: {zh: 放行测试, en: Release timing test}
jurisdiction: "14"
valid_from: "2022-01-01T00:00:00+08:00"
lookback_days: 7
rules:
  - id: RT-R1-outside
    trigger: arrival
    when: {outside_province: true}
    code: yellow
    measure:
      phases: [{kind: home_isolation, days: 1}]
      release: auto
    reason: {zh: 省外来返, en: Arrived from outside the province}
"""


def _scan(person: str, due_in: float) -> dict:
    at = int(time.time() * 1000 + due_in * 1000) - DAY_MS
    return {"topic": "checkpoint.scans.station", "key": person, "value": {
        "id": f"st-{person}", "person": person, "event_time": format_ts(at),
        "checkpoint": {"id": "TY-SOUTH", "kind": "station", "area": "140105"},
        "travel": [{"area": "110105", "date": format_date(local_day(at) - 1)}]}}


def _events(ns, kind: str) -> dict[str, dict]:
    return {r["value"]["person"]: r["value"] for r in ns.read(["checkpoint.code-changes"], idle_ms=600)
            if r["value"]["kind"] == kind}


def _wait(ns, kind: str, persons: set[str], timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = _events(ns, kind)
        if persons <= set(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_pending_releases_survive_a_kill_and_fire_on_time(ns, workers, tmp_path: Path):
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "release-test.yaml").write_text(POLICY, encoding="utf-8")
    env = {"CHECKPOINT_POLICY_DIR": str(policies), "CHECKPOINT_TIMER_INTERVAL": str(TIMER_INTERVAL)}
    worker = workers(clock="wall", env=env)
    # "late": due while the worker is down; "after": due once it is back
    records = [_scan("person-rel-late-01", 12.0), _scan("person-rel-after-1", 30.0)]
    ns.produce(records)
    assigned = _wait(ns, "assign", {"person-rel-late-01", "person-rel-after-1"}, 30)
    assert set(assigned) == {"person-rel-late-01", "person-rel-after-1"}
    assert not _events(ns, "release")
    worker.kill()  # both releases pending: only the persons changelog knows them
    time.sleep(max(0.0, parse_ts(assigned["person-rel-late-01"]["release_at"]) / 1000 - time.time() + 3))
    worker.start()
    ready = time.time()
    released = _wait(ns, "release", set(assigned), 90)
    assert set(released) == set(assigned), "a pending release was lost in the crash"
    lines = []
    for person, event in sorted(released.items()):
        due = parse_ts(event["event_time"]) / 1000
        assert due == parse_ts(assigned[person]["release_at"]) / 1000
        fired = parse_ts(event["emitted_at"]) / 1000
        assert fired >= due, f"{person} released {due - fired:.3f} s early"
        start = max(due, ready)  # a release cannot fire while its worker is down
        lateness = fired - start
        lines.append(f"{person}: due {event['event_time']}, fired +{fired - due:.2f} s after due "
                     f"({lateness:.2f} s counted from {'restart' if start == ready else 'due'})")
        assert lateness <= TIMER_INTERVAL + TOLERANCE, lines[-1]
    ids = [r["value"]["id"] for r in ns.read(["checkpoint.code-changes"]) if r["value"]["kind"] == "release"]
    assert len(set(ids)) == 2
    report_line("release after kill -9 (wall clock, timer 1 s, tolerance 5 s): " + "; ".join(lines)
                + f"; release events on topic {len(ids)}, distinct {len(set(ids))}")
