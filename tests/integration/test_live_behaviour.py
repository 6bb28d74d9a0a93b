"""Live behaviour on the real broker: retroactive raises, duplicates, dead letters, two
workers, releases on time."""

from __future__ import annotations

import base64
import shutil
import time
from collections import Counter
from pathlib import Path

import orjson

from streams import contracts
from streams.engine.timeutil import DAY_MS, HOUR_MS, format_ts, local_day, parse_ts
from streams.recording import read_jsonl
from streams.replay import Replay, read_recording
from tests.integration.harness import comparable

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
POLICIES = Path(__file__).resolve().parents[2] / "streams" / "policies"


def now_ms() -> int:
    return int(time.time() * 1000)


def scan(person: str, when: int, area: str, travel: list[tuple[str, int]], scan_id: str) -> dict:
    return {"topic": "checkpoint.scans.station", "key": person, "value": {
        "id": scan_id, "person": person, "event_time": format_ts(when),
        "checkpoint": {"id": "CP-LIVE", "kind": "station", "area": area},
        "travel": [{"area": a, "date": _date(day)} for a, day in travel]}}


def _date(ordinal: int) -> str:
    from streams.engine.timeutil import format_date

    return format_date(ordinal)


def changes(records: list[dict]) -> list[dict]:
    return [r["value"] for r in records if r["topic"] == "checkpoint.code-changes"]


def raise_now(ns, area: str, update_id: str) -> None:
    """Raise `area` to high, effective now."""
    at = format_ts(now_ms())
    ns.produce([{"topic": "checkpoint.risk-areas", "key": area, "value": {
        "id": update_id, "area": area, "level": "high", "effective_at": at, "event_time": at}}])


def wait_split(first, second, timeout: float = 60.0) -> None:
    """Until two workers own disjoint partition sets that cover all four partitions."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mine = [set(w.get("/ready")[1]["partitions"]) for w in (first, second)]
        if mine[0] and mine[1] and not mine[0] & mine[1] and mine[0] | mine[1] == {0, 1, 2, 3}:
            return
        time.sleep(0.5)
    raise AssertionError(f"partitions not split: {mine}")


def test_raising_an_area_after_travellers_passed_changes_their_codes(ns, workers):
    worker = workers(clock="wall")
    now = now_ms()
    yesterday = local_day(now) - 1
    passed = ["retro-visitor-1", "retro-visitor-2", "retro-visitor-3"]
    records = [scan(p, now - 60_000, area, [("610113", yesterday)], f"st-{p}")
               for p, area in zip(passed, ("140802", "140105", "140802"), strict=True)]
    records.append(scan("retro-elsewhere", now - 60_000, "140802", [("110105", yesterday)],
                        "st-retro-elsewhere"))
    ns.produce(records)
    ns.wait_idle()
    raise_now(ns, "610113", "ra-live-610113")
    ns.wait_idle()
    red = [c for c in changes(ns.read()) if c["kind"] == "assign"]
    assert sorted(c["person"] for c in red) == passed
    assert {c["caused_by"][0] for c in red} == {"ra-live-610113"}
    assert {c["rule"] for c in red} == {"SX0820-R1-high", "TY0820-R1-high"}
    status, areas = worker.get("/areas")
    assert status == 200 and {"area": "610113", "level": "high", "update": "ra-live-610113"} in areas["areas"]


def test_a_raise_reaches_every_visitor_once_on_two_workers_as_one_item_per_partition(ns, workers):
    """Given 40 recent visitors of Xi'an spread over every partition and two workers,
    When Xi'an is raised to high, Then each visitor gets exactly one code change caused by
    the raise, from whichever worker owns them; and the raise travelled as one register
    item to each other partition (each owner found its visitors in its own index), not as
    one item per visitor."""
    wait_split(workers(name="w1", clock="wall"), workers(name="w2", clock="wall"))
    now = now_ms()
    yesterday = local_day(now) - 1
    passed = [f"retro-two-{n:02d}" for n in range(40)]
    ns.produce([scan(p, now - 60_000, "140105", [("610113", yesterday)], f"st-{p}") for p in passed])
    ns.wait_idle()
    raise_now(ns, "610113", "ra-two-610113")
    ns.wait_idle()
    caused = [c for c in changes(ns.read()) if "ra-two-610113" in c["caused_by"]]
    assert sorted(c["person"] for c in caused) == passed
    items = [r for r in ns.read(["checkpoint.internal.person-work"])
             if r["value"]["kind"] == "reevaluate"]
    [source] = {r["value"]["source"]["partition"] for r in items}
    assert sorted(r["value"]["partition"] for r in items) == sorted({0, 1, 2, 3} - {source})
    assert all(r["partition"] == r["value"]["partition"] and "person" not in r["value"]
               for r in items)
    for record in items:  # the contract holds for what the workers really sent
        contracts.validator("person-work").validate(record["value"])


def test_a_duplicate_input_gives_its_events_once(ns, workers):
    workers()
    record = scan("dup-traveller", parse_ts("2022-08-21T10:00:00+08:00"), "140802",
                  [("110105", local_day(parse_ts("2022-08-20T10:00:00+08:00")))], "st-dup-1")
    ns.produce([record, record])
    ns.wait_idle()
    outputs = ns.read()
    assert [(c["person"], c["rule"]) for c in changes(outputs)] == [
        ("dup-traveller", "SX0820-R4-outside-province")]


def test_each_dead_letter_reason_live(ns, workers):
    workers(clock="wall", env={"CHECKPOINT_MAX_AGE_DAYS": "30"})
    now = now_ms()
    good = scan("dl-traveller", now - 1000, "140105", [], "st-dl-good")["value"]
    bad = {
        "malformed_json": b'{"id": "st-dl-1", "person": ',
        "schema_violation": orjson.dumps({**good, "id": "st-dl-2", "travel": "nowhere"}),
        "unknown_enum": orjson.dumps({**good, "id": "st-dl-3",
                                      "checkpoint": {**good["checkpoint"], "kind": "airport"}}),
        "raw_identity_number": orjson.dumps({**good, "id": "st-dl-4", "note": "11010119900307777X"}),
        "future_event_time": orjson.dumps({**good, "id": "st-dl-5",
                                           "event_time": format_ts(now + 3_600_000)}),
        "stale_event_time": orjson.dumps({**good, "id": "st-dl-6",
                                          "event_time": "2022-08-21T10:00:00+08:00"}),
        "invalid_area_code": orjson.dumps({**good, "id": "st-dl-7",
                                           "travel": [{"area": "990101", "date": "2022-08-19"}]}),
        "too_large": orjson.dumps({**good, "id": "st-dl-8", "note": "x" * 1_000_100}),
    }
    ns.produce([{"topic": "checkpoint.scans.station", "key": "dl-traveller", "value": raw}
                for raw in bad.values()] + [{"topic": "checkpoint.scans.station",
                                             "key": "dl-traveller", "value": good}])
    ns.wait_idle()
    outputs = ns.read()
    letters = [r["value"] for r in outputs if r["topic"] == "checkpoint.dead-letters"]
    assert sorted(letter["reason"] for letter in letters) == sorted(bad)
    for letter in letters:
        assert letter["source"]["topic"] == ns.topic("checkpoint.scans.station")
        assert letter["source"]["offset"] is not None and letter["source"]["partition"] is not None
        if letter["reason"] in ("raw_identity_number", "too_large"):
            assert letter["original"] is None
        else:
            assert base64.b64decode(letter["original"]) == bad[letter["reason"]]
    assert b"11010119900307777X" not in b"".join(orjson.dumps(r) for r in outputs)
    assert len(changes(outputs)) == 0  # the good scan: in-province, nothing to assign


def test_two_workers_split_partitions_and_agree_with_replay(ns, workers):
    first = workers(name="w1")
    second = workers(name="w2")
    wait_split(first, second)
    records = read_jsonl(SCENARIOS / "z22.jsonl")
    ns.feed(records)
    live = ns.read()
    parsed, _ = read_recording(orjson.dumps(r) for r in records)
    expected = Replay().run(parsed)
    assert Counter(r["topic"] for r in live) == Counter(r["topic"] for r in expected)
    assert comparable(live) == comparable(expected)
    # the register stays current on both workers (the GlobalTable bug #283 does not apply)
    ns.produce([{"topic": "checkpoint.risk-areas", "key": "140106", "value": {
        "id": "ra-two-workers", "area": "140106", "level": "medium",
        "effective_at": "2022-08-21T00:00:00+08:00", "event_time": "2022-08-21T00:00:00+08:00"}}])
    ns.wait_idle()
    for worker in (first, second):
        areas = worker.get("/areas")[1]["areas"]
        assert {"area": "140106", "level": "medium", "update": "ra-two-workers"} in areas


def test_release_arrives_within_one_timer_interval_of_its_due_time(ns, workers, tmp_path):
    policy_dir = tmp_path / "policies"
    shutil.copytree(POLICIES, policy_dir)
    (policy_dir / "test-short-release.yaml").write_text("""
id: test-short-release
version: 1
title: {zh: 测试：一天居家健康监测, en: "Test: one day of home health monitoring"}
jurisdiction: "1407"
valid_from: "2020-01-01T00:00:00+08:00"
lookback_days: 7
rules:
  - id: TEST-R1-one-day
    trigger: arrival
    when: {outside_province: true}
    code: yellow
    measure:
      phases: [{kind: home_health_monitoring, days: 1}]
      release: auto
    reason: {zh: 测试规则, en: test rule}
""", encoding="utf-8")
    workers(clock="wall", env={"CHECKPOINT_POLICY_DIR": str(policy_dir),
                               "CHECKPOINT_TIMER_INTERVAL": "1.0"})
    due = now_ms() + 8_000
    arrival = due - 86_400_000  # a one-day control that started a day ago, due in 8 s
    ns.produce([scan("short-release-1", arrival, "140702", [("110105", local_day(arrival) - 1)],
                     "st-short-1")])
    deadline = time.monotonic() + 40
    released = []
    while time.monotonic() < deadline and not released:
        time.sleep(1)
        released = [c for c in changes(ns.read(idle_ms=500)) if c["kind"] == "release"]
    assert len(released) == 1, "no release arrived"
    event = released[0]
    assert (event["rule"], event["from"], event["to"]) == ("TEST-R1-one-day", "yellow", "green")
    assert parse_ts(event["event_time"]) == arrival + 86_400_000
    late = parse_ts(event["emitted_at"]) - parse_ts(event["event_time"])
    # fired by the 1 s timer: one interval late at most, plus slack for 2 cores shared with a
    # broker and the test itself (the worker reports the exact delay as a metric)
    assert 0 <= late <= 1_000 + 5_000, late


def test_an_undelivered_output_ends_the_worker_before_its_input_is_committed(ns, workers):
    """Given a code-changes topic that refuses the worker's output (a message-size limit
    below it), When a scan that turns someone red arrives, Then the worker exits with
    status 70 before committing the scan; and once the topic accepts outputs again, a
    restarted worker processes the same scan and the red code comes out."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    topic = ns.topic("checkpoint.code-changes")
    admin = KafkaAdminClient(bootstrap_servers=ns.bootstrap)

    def limit(size: str) -> None:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                            configs={"max.message.bytes": size})])

    try:
        limit("200")
        first = workers(name="refused", clock="wall")
        now = now_ms()
        ns.produce([scan("undelivered-1", now - 60_000, "140105",
                         [("540102", local_day(now) - 1)], "st-undelivered-1")])
        assert first.process is not None
        assert first.process.wait(timeout=60) == 70
        assert "output not delivered" in first.log_path.read_text()
        assert ns.lag() >= 1  # the scan was not committed
        assert not changes(ns.read())
        limit("1048588")
        workers(name="retried", clock="wall")
        ns.wait_idle()
        red = [c for c in changes(ns.read()) if c["person"] == "undelivered-1"]
        assert red and {c["to"] for c in red} == {"red"}
        assert red[0]["caused_by"][0] == "st-undelivered-1"
    finally:
        admin.close()


def test_stream_clock_releases_wait_for_a_topic_still_behind_on_the_same_partition(
        ns, workers, tmp_path):
    """Given a person under a 2-day control whose next scan, an hour before the release, is
    at the end of a station backlog, and a highway scan of the same partition a day after
    the release, all on the topics before the worker starts, When the worker reads the
    highway scan first (one record against thousands), Then the release still waits for
    the station scan: live equals replay (a clock taken from the topic that ran ahead
    released the person first and started a second control from that scan)."""
    from tests.chaos import streamgen as sg

    policies = sg.write_policy(tmp_path / "policies")
    person = "stream-clock-person"
    part = sg.partition_of(person)
    other = next(f"stream-clock-other-{i}" for i in range(100)
                 if sg.partition_of(f"stream-clock-other-{i}") == part)
    t0 = sg.START
    day = local_day(t0)
    records = [*sg.register(),
               sg._scan("sc-first", person, t0, [(sg.MEDIUM, day - 1)], sg.CHECKPOINTS[1])]
    backlog = 6_000
    span = 2 * DAY_MS - 2 * HOUR_MS
    records += [sg._scan(f"sc-fill-{n}", f"stream-clock-filler-{n}", t0 + HOUR_MS + span * n // backlog,
                         [], sg.CHECKPOINTS[1]) for n in range(backlog)]
    again = t0 + 2 * DAY_MS - HOUR_MS
    records.append(sg._scan("sc-again", person, again, [(sg.MEDIUM, local_day(again) - 1)],
                            sg.CHECKPOINTS[1]))
    records.append(sg._scan("hw-ahead", other, t0 + 3 * DAY_MS, [], sg.CHECKPOINTS[2]))
    assert records[-1]["topic"] == sg.HIGHWAY
    ns.produce(records)
    workers(env={"CHECKPOINT_POLICY_DIR": str(policies), "CHECKPOINT_TIMER_INTERVAL": "0.1"})
    ns.wait_idle()
    expected = sg.replay(records, policies).outputs
    live = ns.read()
    mine = [r for r in live if r["key"] == person]
    assert [r["value"]["kind"] for r in mine if r["topic"] == "checkpoint.code-changes"] == [
        r["value"]["kind"] for r in expected
        if r["topic"] == "checkpoint.code-changes" and r["key"] == person]
    assert comparable(live) == comparable(expected)
