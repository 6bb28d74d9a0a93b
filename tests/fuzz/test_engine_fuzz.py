"""Hostile sequences through the engine: out of order, duplicated ids, far-off times,
huge travel histories. The replay (the same engine as the live workers) must end every
input as processed or dead-lettered, emit only contract-valid events, never emit one
cause twice, and keep each person's state bounded."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams import contracts
from streams.engine.timeutil import DAY_MS, local_day, parse_ts
from streams.replay import Record, Replay
from streams.topics import CODE_CHANGES, DEAD_LETTERS
from tests.fuzz.schemagen import Generator, timestamps

SETTINGS = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])
AREAS = ["140105", "140106", "140802", "140728", "1401", "610113", "460204", "460202",
         "540102", "110105", "5406", "140105001"]
PERSONS = ["person-0001", "person-0002", "person-0003", "ZZ-traveller-04"]
IDS = [f"in-{n}" for n in range(10)]  # a small pool: ids collide across inputs and topics
from datetime import UTC, datetime  # noqa: E402

NEAR = timestamps(datetime(2022, 3, 20, tzinfo=UTC), datetime(2022, 9, 30, tzinfo=UTC))
FAR = timestamps()
GEN = Generator({
    "common.schema.json#/$defs/area": st.sampled_from(AREAS),
    "common.schema.json#/$defs/person": st.sampled_from(PERSONS),
    "common.schema.json#/$defs/id": st.sampled_from(IDS),
    "common.schema.json#/$defs/timestamp": st.one_of(NEAR, NEAR, NEAR, FAR),
    "common.schema.json#/$defs/date": NEAR.map(lambda t: t[:10]),
    "common.schema.json#/$defs/level": st.sampled_from(["high", "medium", "low", "cases", "lifted"]),
})
TOPICS = {"checkpoint.scans.station": "station-scan", "checkpoint.scans.highway": "highway-scan",
          "checkpoint.risk-areas": "risk-area-update", "checkpoint.pcr-results": "pcr-result",
          "checkpoint.contact-notices": "contact-notice",
          "checkpoint.operator-commands": "operator-command"}
OUTPUT_SCHEMA = {CODE_CHANGES: "code-change", "checkpoint.alerts": "alert", DEAD_LETTERS: "dead-letter"}


@st.composite
def inputs(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    topics = st.sampled_from(sorted(TOPICS))
    out = []
    for _ in range(draw(st.integers(1, 25))):
        topic = draw(topics)
        out.append((topic, draw(GEN.strategy(TOPICS[topic]))))
    return out


def run(records: list[tuple[str, dict[str, Any]]]) -> Replay:
    """Records in the order given (not sorted: out of order on purpose), then all timers.

    States are kept for ever here: input ids collide on purpose across months and even
    centuries, and a state deleted once nothing in it mattered (docs/privacy.md) forgets
    the ids it saw, so a far later input reusing one would be decided as new. Retention
    has its own tests (tests/unit/test_retention.py)."""
    replay = Replay(retention_grace=None)
    for line, (topic, value) in enumerate(records, start=1):
        replay.feed(Record.of(topic, value.get("person"), value, line))
    latest = max(parse_ts(v["event_time"]) for _, v in records)
    replay.advance_to(latest + 60 * DAY_MS)
    return replay


def check_outputs(replay: Replay) -> None:
    assert replay.tally.reconciles(), replay.tally.to_json()
    ids: Counter[str] = Counter()
    for record in replay.outputs:
        validator = contracts.validator(OUTPUT_SCHEMA[record["topic"]])
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(record["value"])]
        assert not errors, (errors, record["value"])
        if record["topic"] != DEAD_LETTERS:
            ids[record["value"]["id"]] += 1
    # one id, one content: an input delivered twice may repeat an event (a pooled tube's
    # alert is raised on every delivery of the tube), never change it
    contents: dict[str, set[bytes]] = {}
    for record in replay.outputs:
        if record["topic"] != DEAD_LETTERS:
            value = {k: v for k, v in record["value"].items() if k != "emitted_at"}
            contents.setdefault(value["id"], set()).add(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    assert not [i for i, c in contents.items() if len(c) > 1], "one id, two different events"
    for person, state in replay.states.items():
        for control in state.controls:
            assert control.due is None or control.due > 0
        assert len(state.seen) <= 512 and len(state.history) <= 50, person


@SETTINGS
@given(inputs())
def test_any_valid_sequence_in_any_order_reconciles_with_valid_outputs(records):
    check_outputs(run(records))


@SETTINGS
@given(inputs())
def test_redelivering_every_input_adds_no_event(records):
    """At-least-once delivery: each input delivered twice in a row (a consumer that
    crashed before committing) yields exactly the events of a single delivery."""
    once = run(records)
    twice = run([item for item in records for _ in range(2)])
    ids = [{r["value"]["id"] for r in replay.outputs if r["topic"] != DEAD_LETTERS}
           for replay in (once, twice)]
    assert ids[0] == ids[1]
    check_outputs(twice)


def _scan(scan_id: str, at: str, travel: list[dict[str, str]]) -> dict[str, Any]:
    return {"id": scan_id, "person": "person-0001", "event_time": at,
            "checkpoint": {"id": "TY-SOUTH", "kind": "station", "area": "140105"}, "travel": travel}


def test_a_scan_with_two_thousand_travel_entries_is_processed():
    travel = [{"area": f"610113{n % 999 + 1:03d}", "date": "2022-08-19"} for n in range(2000)]
    replay = run([("checkpoint.risk-areas", {
        "id": "ra-1", "area": "610113", "level": "high", "effective_at": "2022-08-10T00:00:00+08:00",
        "event_time": "2022-08-10T00:00:00+08:00"}),
        ("checkpoint.scans.station", _scan("st-1", "2022-08-21T10:00:00+08:00", travel))])
    check_outputs(replay)
    assert any(r["value"].get("to") == "red" for r in replay.outputs if r["topic"] == CODE_CHANGES)


def _township_codes() -> list[str]:
    from streams import areas

    counties = sorted(c for c in areas._table().names if len(c) == 6 and areas.is_known(c + "001"))
    return [c + f"{n:03d}" for n in range(1, 60) for c in counties]


def test_person_state_stays_bounded_under_hostile_travel_histories():
    """A faulty scanner lists 2,000 distinct real township codes (some dated years ahead)
    on every scan of one person, each on another trip. Before the bound the state grew by
    ~40 kB a scan; at ~1 MB its changelog record killed the worker (see tests/chaos)."""
    codes = iter(_township_codes())
    records = []
    for k in range(60):
        travel = [{"area": next(codes), "date": "2031-01-01" if n % 3 else "2022-08-19"}
                  for n in range(2000)]
        scan = _scan(f"st-{k}", f"2022-08-20T10:{k:02d}:00+08:00", travel)
        scan["trip"] = {"mode": "car", "number": f"JA{k:05d}", "date": "2031-01-01"}
        records.append(("checkpoint.scans.station", scan))
    replay = run(records)
    check_outputs(replay)
    state = replay.states["person-0001"]
    size = len(orjson.dumps(state))
    assert size < 100_000, size
    assert len(state.visits) <= 1024 and len(state.trips) <= 128
    assert max(state.visits.values()) <= local_day(parse_ts("2022-08-20T11:00:00+08:00"))  # none ahead
