"""Crash tests on the real broker: kill -9 workers, stop the broker, rebalance, restart.

Each test streams inputs at a steady rate while the fault happens, then compares every
output topic with the offline replay of exactly what was produced (see streamgen) and
prints the reconciliation. At-least-once is the contract: an event may appear on the
topic more than once (same id, same content); after de-duplicating by id nothing may
be missing, nothing extra, and no cause may have two different events.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.chaos import streamgen
from tests.chaos.conftest import Feed, changelog, report, report_line, settle_outputs

#: the checkpoints' counties: one report per county and day
REPORT_AREAS = "140105,140106,140728,140802"
RATE = 800.0  # inputs per second: a worker about keeps up, so a crash lands mid-stream


def _check(rec: streamgen.Reconciliation, known_bug: bool = False) -> None:
    report(rec, known_bug)
    assert rec.missing == 0, rec.examples
    assert rec.unexpected == 0, rec.examples
    assert rec.differing == 0, rec.examples
    assert rec.conflicting == 0, rec.examples
    assert rec.dead_letter_mismatch == 0
    assert rec.state_differing == 0, rec.examples


def test_kill_9_mid_stream_then_restart_recovers_state_and_reconciles(ns, workers, tmp_path: Path):
    """Given 10,000+ inputs streaming in, When the only worker is SIGKILLed mid-stream and
    restarted, Then its table comes back from the changelog and the outputs equal the replay's."""
    policies = streamgen.write_policy(tmp_path / "policies")
    env = {"CHECKPOINT_POLICY_DIR": str(policies), "CHECKPOINT_REPORT_INTERVAL": "0.5",
           "CHECKPOINT_REPORT_AREAS": REPORT_AREAS}
    stream = streamgen.scans(10_000, seed=61)
    ns.produce(streamgen.register())
    worker = workers(env=env)
    feed = Feed(ns, stream.records, RATE)
    feed.start()
    kills = 0
    for fraction in (0.3, 0.65):
        feed.wait_for(fraction)
        worker.kill()
        kills += 1
        time.sleep(1.0)  # the stream goes on without a worker
        worker.start()
    feed.finish()
    ns.wait_idle(timeout=180)
    expected = streamgen.replay([*streamgen.register(), *stream.records], policies)
    rec = streamgen.reconcile("kill -9 x2, one worker", stream, expected,
                              settle_outputs(ns, streamgen.event_count(expected)), {"kill -9": kills})
    versions: dict[str, list[bytes | None]] = {}
    streamgen.compare_state(rec, expected, changelog(ns, history=versions), versions)
    _check(rec)
    _reports_reconcile(ns, expected)


def _reports_reconcile(ns, expected) -> None:
    """Every daily report filed equals the replay's for the same inputs: the counts
    survived the crashes (they are written with the states they follow from)."""
    from streams.engine.timeutil import local_day, parse_date

    filed: dict[str, list[dict]] = {}
    deadline = time.monotonic() + 30
    days = {local_day(streamgen.START) + n for n in range(7)}
    wanted = {f"{area}:{streamgen.format_date(day)}" for area in REPORT_AREAS.split(",") for day in days}
    while time.monotonic() < deadline:
        filed = {}
        for record in ns.read(["checkpoint.reports"], idle_ms=800):
            filed.setdefault(record["key"], []).append(record["value"])
        if wanted <= filed.keys():
            break
        time.sleep(1)
    assert wanted <= filed.keys(), sorted(wanted - filed.keys())
    differing = []
    for key, copies in sorted(filed.items()):
        area, date = key.split(":")
        want = {k: v for k, v in expected.reports.report(area, parse_date(date), 0).items()
                if k != "generated_at"}
        for copy in copies:
            if {k: v for k, v in copy.items() if k != "generated_at"} != want:
                differing.append((key, copy, want))
    arrivals = sum(sum(c[0]["arrivals"].values()) for c in filed.values())
    report_line(f"kill -9 x2 daily reports: {len(filed)} area-days filed, {arrivals} arrivals "
                f"counted, {len(differing)} differing from the replay")
    assert not differing, [(key, {k: (v, want.get(k)) for k, v in copy.items() if want.get(k) != v})
                           for key, copy, want in differing[:3]] + [len(filed), sum(map(len, filed.values()))]
    assert arrivals > 1000


def _partitions(worker) -> set[int]:
    try:
        status, body = worker.get("/ready")
    except OSError:
        return set()
    return set(body.get("partitions") or ()) if status == 200 else set()


def _until(condition, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.3)
    return time.monotonic() - started


def test_broker_stop_and_restart_mid_stream_worker_reconnects_and_catches_up(
        ns, workers, chaos_broker, tmp_path: Path):
    """Given a worker with a backlog, When the broker stops (SIGTERM) for a few seconds and
    starts again with its data, Then the same worker process reconnects and catches up."""
    policies = streamgen.write_policy(tmp_path / "policies")
    stream = streamgen.scans(6_000, seed=62)
    ns.produce(streamgen.register())
    worker = workers(env={"CHECKPOINT_POLICY_DIR": str(policies)})
    feed = Feed(ns, stream.records, RATE)
    feed.start()
    feed.wait_for(0.4)
    feed.pause()  # the scanners buffer while the broker is away
    chaos_broker.stop()
    time.sleep(5.0)
    chaos_broker.start()
    feed.resume()
    feed.finish()
    ns.wait_idle(timeout=180)
    assert worker.process is not None and worker.process.poll() is None, "the worker died"
    expected = streamgen.replay([*streamgen.register(), *stream.records], policies)
    rec = streamgen.reconcile("broker stop/start, one worker", stream, expected,
                              settle_outputs(ns, streamgen.event_count(expected)),
                              {"broker restart": 1})
    versions: dict[str, list[bytes | None]] = {}
    streamgen.compare_state(rec, expected, changelog(ns, history=versions), versions)
    _check(rec)


def test_two_workers_kill_one_the_other_takes_over_and_outputs_reconcile(ns, workers, tmp_path: Path):
    """Given two workers sharing the partitions, When one is SIGKILLed mid-stream, Then the
    other is assigned all partitions, recovers their state and the outputs reconcile."""
    policies = streamgen.write_policy(tmp_path / "policies")
    env = {"CHECKPOINT_POLICY_DIR": str(policies)}
    stream = streamgen.scans(10_000, seed=63)
    ns.produce(streamgen.register())
    first = workers(name="w1", env=env)
    second = workers(name="w2", env=env)
    _until(lambda: _partitions(first) and _partitions(second)
           and _partitions(first) | _partitions(second) == {0, 1, 2, 3}, 60, "a shared assignment")
    feed = Feed(ns, stream.records, RATE)
    feed.start()
    feed.wait_for(0.4)
    second.kill()
    took = _until(lambda: _partitions(first) == {0, 1, 2, 3}, 90, "the survivor to take over")
    feed.finish()
    ns.wait_idle(timeout=90)
    expected = streamgen.replay([*streamgen.register(), *stream.records], policies)
    rec = streamgen.reconcile("two workers, kill -9 one", stream, expected,
                              settle_outputs(ns, streamgen.event_count(expected)),
                              {"kill -9": 1, "rebalance": 1})
    rec.notes.append(f"survivor owned all partitions {took:.1f} s after the kill")
    versions: dict[str, list[bytes | None]] = {}
    streamgen.compare_state(rec, expected, changelog(ns, history=versions), versions)
    _check(rec)


def test_a_hostile_traveller_cannot_crash_the_worker(ns, workers):
    """A faulty scanner lists 2,000 distinct real township codes on each of 40 scans of one
    person. Before the engine bounded travel memory (VISITS_LIMIT), the person's state
    passed 1 MB, its changelog record raised MessageSizeTooLargeError in Faust's producer
    buffer and the worker exited; the redelivered scan then killed the next one."""
    from streams import areas

    counties = sorted(c for c in areas._table().names if len(c) == 6 and areas.is_known(c + "001"))
    codes = (c + f"{n:03d}" for n in range(1, 999) for c in counties)
    hostile = []
    for k in range(40):
        value = {"id": f"st-h-{k}", "person": "person-hostile-01",
                 "event_time": f"2022-09-01T10:{k:02d}:00+08:00",
                 "checkpoint": {"id": "TY-SOUTH", "kind": "station", "area": "140105"},
                 "travel": [{"area": next(codes), "date": "2022-08-30"} for _ in range(2000)]}
        hostile.append({"topic": streamgen.STATION, "key": value["person"], "value": value})
    stream = streamgen.scans(300, seed=64)
    worker = workers()
    ns.produce(hostile + stream.records)
    ns.wait_idle(timeout=120)
    assert worker.process is not None and worker.process.poll() is None, worker.log_path.read_text()[-2000:]
    status, body = worker.get("/persons/person-hostile-01")
    assert status == 200 and body["found"]
    size = max(len(v) for k, v in changelog(ns).items() if k == "person-hostile-01")
    assert size < 100_000, size
