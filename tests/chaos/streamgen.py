"""Input streams for the crash tests, and the reconciliation of a live run with replay.

The stream is made to be comparable with the offline replay however a crash reorders
its processing:

- the register (two designated areas) is on the topic before any worker starts, so every
  worker sees the same register at every scan;
- every input is a person-keyed scan and a person's scans of one trip are all on one
  topic, so Kafka keeps them in order across crashes, rebalances and redeliveries (the
  live worker consumes station and highway scans independently: two scans of one
  person on the two topics may be applied out of event-time order, which the replay
  never does; a person's trips are days apart);
- a person's scans of one trip lie within an hour, and every control lasts at least
  two days (timers follow each partition's watermark, streams/streamclock.py: a topic
  that ran ahead after a crash does not release anyone early);
- the last inputs are one sentinel scan per partition at the very end, so every
  partition (and every worker's stream clock) reaches the end time.

Faults the stream carries on purpose: exact redeliveries of scans (the same id), scans
with unknown area codes, truncated JSON, and scans holding a resident ID number.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streams.engine import load_policy_dir
from streams.engine.timeutil import DAY_MS, HOUR_MS, format_date, format_ts, local_day, parse_ts
from streams.privacy import person_ref
from streams.replay import Replay, read_recording
from streams.runtime.changelog import key_partition
from streams.runtime.states import decode

STATION = "checkpoint.scans.station"
HIGHWAY = "checkpoint.scans.highway"
RISK_AREAS = "checkpoint.risk-areas"
CODE_CHANGES = "checkpoint.code-changes"
ALERTS = "checkpoint.alerts"
DEAD_LETTERS = "checkpoint.dead-letters"
MINUTE_MS = 60_000
START = parse_ts("2022-09-01T06:00:00+08:00")
HIGH, MEDIUM = "610113", "460204"  # Xi'an Yanta (high), Sanya Tianya (medium)
CHECKPOINTS = [("TY-SOUTH", "140105"), ("TY-STATION", "140106"), ("YC-EXIT", "140802"),
               ("PY-EXIT", "140728")]
ELSEWHERE = ["110105", "310115", "140721", "140212", "540102"]
#: A well-formed resident ID number (check character valid), made up for the tests.
RESIDENT_ID = "11010519491231002X"
KEY = b"chaos-test-deployment-key-0123456789"

POLICY = """\
id: chaos-shanxi
version: 1
title: {zh: 测试政策, en: Crash-test policy}
jurisdiction: "14"
valid_from: "2022-01-01T00:00:00+08:00"
lookback_days: 7
rules:
  - id: CH-R1-high
    trigger: arrival
    when: {visited_area_level: [high]}
    code: red
    mark: red
    measure:
      phases: [{kind: centralized_isolation, days: 3}]
      pcr_days: [1]
      landing_test: true
      release: auto
    reason: {zh: 高风险区旅居史, en: Stayed in a high-risk area}
  - id: CH-R2-medium
    trigger: arrival
    when: {visited_area_level: [medium]}
    code: yellow
    mark: yellow
    measure:
      phases: [{kind: home_isolation, days: 2}]
      release: auto
    reason: {zh: 中风险区旅居史, en: Stayed in a medium-risk area}
  - id: CH-R3-outside
    trigger: arrival
    when: {outside_province: true}
    code: unchanged
    measure:
      phases: [{kind: self_health_monitoring, days: 2}]
      release: auto
    reason: {zh: 省外来返, en: Arrived from outside the province}
"""


def write_policy(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "chaos-shanxi.yaml").write_text(POLICY, encoding="utf-8")
    return directory


def partition_of(person: str, partitions: int = 4) -> int:
    return key_partition(person.encode(), partitions)


def register() -> list[dict[str, Any]]:
    when = format_ts(START - 3 * DAY_MS)
    return [
        {"topic": RISK_AREAS, "key": HIGH, "value": {
            "id": "ra-chaos-high", "area": HIGH, "level": "high", "effective_at": when,
            "event_time": when, "notice": "chaos 1", "name": "西安市雁塔区"}},
        {"topic": RISK_AREAS, "key": MEDIUM, "value": {
            "id": "ra-chaos-medium", "area": MEDIUM, "level": "medium", "effective_at": when,
            "event_time": when, "notice": "chaos 2", "name": "三亚市天涯区"}},
    ]


@dataclass
class Stream:
    """Records in production order, plus what was injected into them."""

    records: list[dict[str, Any]] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    end: int = 0
    persons: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.records)


def _scan(scan_id: str, person: str, at: int, travel: list[tuple[str, int]],
          checkpoint: tuple[str, str]) -> dict[str, Any]:
    checkpoint_id, area = checkpoint
    kind = "highway" if checkpoint_id.endswith("EXIT") else "station"
    value: dict[str, Any] = {
        "id": scan_id, "person": person, "event_time": format_ts(at),
        "checkpoint": {"id": checkpoint_id, "kind": kind, "area": area},
        "travel": [{"area": a, "date": format_date(d)} for a, d in travel],
    }
    return {"topic": HIGHWAY if kind == "highway" else STATION, "key": person, "value": value}


def scans(count: int, *, seed: int = 6, days: int = 8, bad_every: int = 97) -> Stream:
    """About `count` inputs over `days` days of event time, in event-time order."""
    rng = random.Random(seed)
    out = Stream()
    span = days * DAY_MS
    events: list[tuple[int, int, dict[str, Any] | bytes, str]] = []
    n = 0
    person_no = 0
    while n < count:
        person_no += 1
        person = person_ref(f"traveller-{seed}-{person_no}", KEY)
        out.persons.add(person)
        at = START + rng.randrange(span - 6 * HOUR_MS)
        day = local_day(at)
        roll = rng.random()
        where = HIGH if roll < 0.2 else MEDIUM if roll < 0.45 else rng.choice(ELSEWHERE)
        travel = [(where, day - rng.randrange(1, 5)), (rng.choice(ELSEWHERE), day - 6)]
        trips = [(at, travel)]
        if rng.random() < 0.15 and at + 4 * DAY_MS < START + span - HOUR_MS:  # comes back later
            back = at + 4 * DAY_MS + rng.randrange(DAY_MS // 2)
            trips.append((back, [(rng.choice([HIGH, MEDIUM, *ELSEWHERE]), local_day(back) - 1)]))
        for trip_no, (t0, trip_travel) in enumerate(trips):
            # one checkpoint kind per trip: Kafka orders a person's inputs within a topic
            # only, and station and highway scans are separate topics
            checkpoint = rng.choice(CHECKPOINTS)
            for hop in range(rng.choice((1, 1, 2, 3))):  # scanned again down the road
                t = t0 + hop * 15 * MINUTE_MS
                record = _scan(f"sc-{seed}-{person_no}-{trip_no}-{hop}", person, t,
                               trip_travel, checkpoint)
                events.append((t, n, record, "scan"))
                n += 1
                if rng.random() < 0.02:  # the scanner sends it twice
                    events.append((t, n, record, "redelivered"))
                    n += 1
        if person_no % bad_every == 0:  # a faulty scanner, three ways
            bad = _scan(f"bad-{seed}-{person_no}", person, at + MINUTE_MS, [("990101", day)], CHECKPOINTS[1])
            events.append((at + MINUTE_MS, n, bad, "invalid_area_code"))
            raw = orjson.dumps(_scan(f"cut-{seed}-{person_no}", person, at, [], CHECKPOINTS[1])["value"])
            events.append((at + 2 * MINUTE_MS, n + 1, raw[: len(raw) // 2], "truncated_json"))
            leak = _scan(f"id-{seed}-{person_no}", person, at + 3 * MINUTE_MS, [], CHECKPOINTS[1])
            leak["value"]["operator_note"] = f"holder {RESIDENT_ID}"
            events.append((at + 3 * MINUTE_MS, n + 2, leak, "raw_identity_number"))
            n += 3
    events.sort(key=lambda e: (e[0], e[1]))
    for t, _, record, kind in events:
        if isinstance(record, bytes):
            out.records.append({"topic": STATION, "key": None, "value": record})
        else:
            out.records.append(record)
        out.faults[kind] += 1
        out.end = max(out.end, t)
    # one sentinel per partition at the end: every partition's clock reaches `end`
    out.end += HOUR_MS
    covered: set[int] = set()
    i = 0
    while len(covered) < 4:
        i += 1
        person = person_ref(f"sentinel-{seed}-{i}", KEY)
        if partition_of(person) in covered:
            continue
        covered.add(partition_of(person))
        out.records.append(_scan(f"end-{seed}-{i}", person, out.end, [("140721", local_day(out.end))],
                                 CHECKPOINTS[1]))
        out.faults["scan"] += 1
    return out


def replay(records: Iterable[dict[str, Any]], policy_dir: Path) -> Replay:
    """The offline replay of exactly what was produced (bytes records as raw lines)."""
    lines = []
    for record in records:
        value = record["value"]
        if isinstance(value, bytes):  # not JSON: a malformed line in the replay too
            lines.append(value)
        else:
            lines.append(orjson.dumps(record))
    parsed, rejected = read_recording(lines)
    run = Replay(load_policy_dir(policy_dir))
    run.run(parsed, dead_letters=rejected)
    return run


# ---------------------------------------------------------------- reconciliation
def _canonical(value: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in value.items() if k not in ("emitted_at", "received_at")},
                        option=orjson.OPT_SORT_KEYS)


def _cause(topic: str, value: dict[str, Any]) -> tuple[Any, ...]:
    """What one event answers: two different events for the same cause are a fault."""
    if topic == CODE_CHANGES:
        return (value["person"], value["kind"], value["control"], tuple(value["caused_by"]))
    return (value["kind"], value.get("person"), value.get("subject"), tuple(value["caused_by"]),
            value["detail"]["en"])


@dataclass
class Reconciliation:
    name: str
    inputs: int
    faults: dict[str, int]
    expected: int = 0           # distinct code changes + alerts in the replay
    on_topic: int = 0           # messages on the output topics (with redeliveries)
    distinct: int = 0           # distinct event ids among them
    missing: int = 0            # in the replay, not live
    unexpected: int = 0         # live, not in the replay
    differing: int = 0          # same id, other content than the replay
    duplicated: int = 0         # extra copies of an id on the topic (allowed)
    conflicting: int = 0        # one id with two contents, or one cause with two ids
    dead_letters_expected: int = 0
    dead_letters_distinct: int = 0
    dead_letters_on_topic: int = 0
    dead_letter_mismatch: int = 0
    state_checked: int = 0
    state_differing: int = 0
    notes: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.differing or self.conflicting
                    or self.dead_letter_mismatch or self.state_differing)

    def line(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        return (f"{self.name}: inputs {self.inputs} [{faults}] | events expected {self.expected}, "
                f"on topic {self.on_topic}, distinct {self.distinct}, missing {self.missing}, "
                f"unexpected {self.unexpected}, differing {self.differing}, duplicated "
                f"{self.duplicated} (dedup by id: 0 left), conflicting {self.conflicting} | "
                f"dead letters expected {self.dead_letters_expected}, distinct "
                f"{self.dead_letters_distinct}, on topic {self.dead_letters_on_topic}, mismatched "
                f"{self.dead_letter_mismatch} | table rows checked {self.state_checked}, differing "
                f"{self.state_differing}" + (f" | {'; '.join(self.notes)}" if self.notes else ""))


def reconcile(name: str, stream: Stream, expected: Replay, live: list[dict[str, Any]],
              faults: dict[str, int]) -> Reconciliation:
    """Compare the live output topics with the replay; see `Reconciliation` for the fields."""
    rec = Reconciliation(name, len(stream.records), {**stream.faults, **faults})
    want: dict[str, bytes] = {}
    for record in expected.outputs:
        if record["topic"] in (CODE_CHANGES, ALERTS):
            want[record["value"]["id"]] = _canonical(record["value"])
    rec.expected = len(want)
    copies: dict[str, set[bytes]] = defaultdict(set)
    causes: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    letters: dict[str, dict[str, Any]] = {}
    for record in live:
        value = record["value"]
        if record["topic"] == DEAD_LETTERS:
            rec.dead_letters_on_topic += 1
            letters[value["id"]] = value
            continue
        rec.on_topic += 1
        copies[value["id"]].add(_canonical(value))
        causes[(record["topic"], *_cause(record["topic"], value))].add(value["id"])
    rec.distinct = len(copies)
    rec.duplicated = rec.on_topic - rec.distinct
    rec.conflicting = (sum(1 for c in copies.values() if len(c) > 1)
                       + sum(1 for ids in causes.values() if len(ids) > 1))
    for event_id, content in want.items():
        if event_id not in copies:
            rec.missing += 1
            if len(rec.examples) < 5:
                rec.examples.append("missing " + content.decode()[:300])
        elif content not in copies[event_id]:
            rec.differing += 1
            if len(rec.examples) < 5:
                rec.examples.append(f"differing {content.decode()[:300]} vs "
                                    f"{next(iter(copies[event_id])).decode()[:300]}")
    for event_id in copies.keys() - want.keys():
        rec.unexpected += 1
        if len(rec.examples) < 5:
            rec.examples.append("unexpected " + next(iter(copies[event_id])).decode()[:300])
    expected_letters = Counter((r["value"]["reason"], r["value"]["input_id"])
                               for r in expected.outputs if r["topic"] == DEAD_LETTERS)
    live_letters = Counter((v["reason"], v["input_id"]) for v in letters.values())
    rec.dead_letters_expected = sum(expected_letters.values())
    rec.dead_letters_distinct = len(letters)
    rec.dead_letter_mismatch = sum(((expected_letters - live_letters)
                                    + (live_letters - expected_letters)).values())
    return rec


def compare_state(rec: Reconciliation, expected: Replay, changelog: dict[str, bytes],
                  history: dict[str, list[bytes | None]] | None = None) -> None:
    """The persons table as its changelog holds it (what a recovery reads) vs the replay."""
    for person, state in expected.states.items():
        rec.state_checked += 1
        raw = changelog.get(person)
        live = _full(raw) if raw else None
        want = orjson.loads(orjson.dumps(state))
        if live is None or _state_view(live) != _state_view(want):
            rec.state_differing += 1
            if len(rec.examples) < 8:
                rec.examples.append(f"state of {person}: live {live and _state_view(live)} "
                                    f"vs replay {_state_view(want)}")
                if history and person in history:  # every version the changelog holds
                    rec.examples.append("  changelog of it: " + " -> ".join(
                        str(_full(v)["seen"] if v else None) + "/" + str(
                            [h["id"][:9] for h in _full(v)["history"]] if v else None)
                        for v in history[person]))


def _full(raw: bytes) -> dict[str, Any]:
    """A stored row with every field (the table leaves out those at their default)."""
    return orjson.loads(orjson.dumps(decode(raw)))


def _state_view(state: dict[str, Any]) -> dict[str, Any]:
    """The decision-relevant part of a person's state (timer bookkeeping excluded)."""
    return {"colour": state["colour"], "mark": state["mark"],
            "controls": sorted((c["id"], c["due"], c["hold"]) for c in state["controls"]),
            "history": [h["id"] for h in state["history"]],
            "seen": sorted(state["seen"])}


def event_count(expected: Replay) -> int:
    """Code changes and alerts the replay emitted (what the live topics must reach)."""
    return sum(1 for r in expected.outputs if r["topic"] in (CODE_CHANGES, ALERTS))
