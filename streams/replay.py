"""Offline replay: the embedded mode, driving the same engine as the live workers.

A recording is JSONL, one record a line, in the shape a Kafka producer sends:
`{"topic": ..., "key": ..., "value": {...}}`. Records are processed in event-time order
(ties keep file order) with in-memory state; time-based releases fire as event time
passes, and up to `until` at the end. The output is deterministic: the same file gives
byte-identical output, which is what lets a live run be checked against a replay.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from . import codec
from .engine import (
    ALERT,
    COMMAND,
    EXPOSURE,
    NOTICE,
    REEVALUATE,
    RESULT,
    SCAN,
    TICK,
    Context,
    PersonState,
    PolicyBook,
    Register,
    VisitorIndex,
    exposure_alert,
    load_policy_dir,
    pool_alert,
    process,
    split_result,
    trip_key,
)
from .engine.timeutil import local_day, parse_ts
from .topics import (
    ALERTS,
    CODE_CHANGES,
    CONTACT_NOTICES,
    DEAD_LETTERS,
    HIGHWAY_SCANS,
    OPERATOR_COMMANDS,
    PCR_RESULTS,
    RISK_AREAS,
    STATION_SCANS,
)

OUTPUT_TOPIC = {ALERT: ALERTS, "code_change": CODE_CHANGES}


@dataclass(order=True, slots=True)
class Record:
    event_time: int
    line: int
    topic: str = field(compare=False)
    key: Any = field(compare=False)
    value: Any = field(compare=False)
    raw: bytes = field(compare=False, default=b"")


@dataclass(slots=True)
class Tally:
    """in = out + dead letters: each input ends as processed (with or without events)."""

    inputs: int = 0
    processed: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    outputs: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)

    def reconciles(self) -> bool:
        return self.inputs == self.processed + self.dead_letters

    def to_json(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "processed": self.processed,
                "dead_letters": self.dead_letters, "duplicates": self.duplicates,
                "outputs": dict(sorted(self.outputs.items())),
                "statuses": dict(sorted(self.statuses.items())),
                "reconciles": self.reconciles()}


def read_recording(lines: Iterable[bytes]) -> tuple[list[Record], list[dict[str, Any]]]:
    """Parse JSONL into records (sorted by event time) and dead letters for bad lines."""
    records: list[Record] = []
    dead: list[dict[str, Any]] = []
    for number, raw_line in enumerate(lines, start=1):
        raw = raw_line.strip()
        if not raw:
            continue
        source = codec.Source(topic="replay", line=number)
        try:
            if codec.holds_identity_number(raw):
                raise codec.Rejected("raw_identity_number", "line holds something shaped like "
                                     "a resident identity number", keep=False)
            try:
                envelope = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise codec.Rejected("malformed_json", f"not valid JSON: {str(exc)[:160]}") from None
            if not isinstance(envelope, dict) or not isinstance(envelope.get("topic"), str) \
                    or "value" not in envelope:
                raise codec.Rejected("schema_violation", 'a line is {"topic", "key", "value"}')
            value = envelope["value"]
            topic = envelope["topic"]
            source = codec.Source(topic=topic, line=number)
            try:
                event_time = parse_ts(value["event_time"])
            except (KeyError, TypeError, ValueError):
                raise codec.Rejected("schema_violation", "event_time: missing or not an "
                                     "ISO-8601 timestamp with offset",
                                     value.get("id") if isinstance(value, dict) else None) from None
            records.append(Record(event_time, number, topic, envelope.get("key"), value, raw))
        except codec.Rejected as rejected:
            dead.append(codec.dead_letter(source, raw, rejected.reason, rejected.detail, 0,
                                          input_id=rejected.input_id,
                                          keep_original=rejected.keep_original))
    records.sort()
    return records, dead


class Replay:
    """In-memory state, register and indexes; `run` feeds records through the engine."""

    def __init__(self, policies: PolicyBook | None = None,
                 limits: codec.Limits | None = None) -> None:
        self.policies = policies or load_policy_dir()
        self.register = Register()
        self.states: dict[str, PersonState] = {}
        self.index = VisitorIndex()
        self.limits = limits or codec.Limits(max_future_ms=None, max_age_ms=None)
        self.clock = 0
        self.tally = Tally()
        self._due: list[tuple[int, str]] = []
        self.outputs: list[dict[str, Any]] = []

    # -- plumbing ----------------------------------------------------------------
    def _ctx(self) -> Context:
        return Context(self.register, self.policies, self.clock)

    def _emit(self, events: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for kind, value in events:
            topic = OUTPUT_TOPIC[kind]
            self.tally.outputs[topic] += 1
            key = value.get("person") or value.get("subject")
            self.outputs.append({"topic": topic, "key": key, "value": value})

    def _person(self, person: str, kind: str, value: dict[str, Any]) -> str:
        outcome = process(self.states.get(person), person, kind, value, self._ctx())
        state = outcome.state
        self.states[person] = state
        self.index.add(state)
        due = state.next_due()
        if due is not None:
            heapq.heappush(self._due, (due, person))
        self._emit(outcome.events)
        return outcome.status

    def advance_to(self, moment: int) -> None:
        """Fire every timer due up to `moment` (event time), oldest first."""
        self.clock = max(self.clock, moment)
        while self._due and self._due[0][0] <= self.clock:
            due, person = heapq.heappop(self._due)
            state = self.states[person]
            if state.next_due() != due:
                continue  # stale heap entry: the person changed since it was pushed
            self._person(person, TICK, {})

    # -- inputs ------------------------------------------------------------------
    def feed(self, record: Record) -> None:
        self.tally.inputs += 1
        self.advance_to(record.event_time)
        try:
            value = codec.check(record.topic, record.value, self.clock, self.limits,
                                parsed_from=record.raw or None)
        except codec.Rejected as rejected:
            self.tally.dead_letters += 1
            letter = codec.dead_letter(
                codec.Source(record.topic, line=record.line), record.raw, rejected.reason,
                rejected.detail, self.clock, input_id=rejected.input_id,
                keep_original=rejected.keep_original)
            self.outputs.append({"topic": DEAD_LETTERS, "key": record.topic, "value": letter})
            self.tally.outputs[DEAD_LETTERS] += 1
            return
        self.tally.processed += 1
        status = self._dispatch(record.topic, value)
        self.tally.statuses[status] += 1
        if status == "duplicate":
            self.tally.duplicates += 1

    def _dispatch(self, topic: str, value: dict[str, Any]) -> str:
        if topic in (STATION_SCANS, HIGHWAY_SCANS):
            return self._person(value["person"], SCAN, value)
        if topic == RISK_AREAS:
            change = self.register.apply_update(value)
            if not change.applied:
                return "duplicate"
            if not change.is_raise:
                return "applied"
            since = local_day(change.effective_at) - self.policies.max_lookback_days
            for person in self.index.visitors(value["area"], since):
                self._person(person, REEVALUATE, value)
            return "applied"
        if topic == PCR_RESULTS:
            self._emit(pool_alert(value, self._ctx()))
            statuses = [self._person(person, RESULT, result) for person, result in split_result(value)]
            return "duplicate" if statuses and all(s == "duplicate" for s in statuses) else "applied"
        if topic == CONTACT_NOTICES:
            if value["kind"] == "exposed_trip":
                if not self.register.apply_exposure(value):
                    return "duplicate"
                self._emit(exposure_alert(value, self._ctx()))
                for person in self.index.passengers(trip_key(value["trip"])):
                    self._person(person, EXPOSURE, value)
                return "applied"
            return self._person(value["person"], NOTICE, value)
        if topic == OPERATOR_COMMANDS:
            return self._person(value["person"], COMMAND, value)
        raise AssertionError(f"unhandled topic {topic}")  # codec.check rejects unknown topics

    def run(self, records: Iterable[Record], until: int | None = None) -> list[dict[str, Any]]:
        for record in records:
            self.feed(record)
        if until is not None:
            self.advance_to(until)
        return self.outputs


def replay_file(
    path: Path | str | None, until: int | None = None, policies: PolicyBook | None = None,
    stream: TextIO | None = None,
) -> Replay:
    """Replay a recording (a path, or `stream` for stdin); returns the finished run."""
    if stream is not None:
        lines: Iterator[bytes] = (line.encode() for line in stream)
        records, dead = read_recording(lines)
    else:
        with open(path, "rb") as handle:  # type: ignore[arg-type]
            records, dead = read_recording(handle)
    replay = Replay(policies)
    for letter in dead:
        replay.tally.inputs += 1
        replay.tally.dead_letters += 1
        replay.tally.outputs[DEAD_LETTERS] += 1
        replay.outputs.append({"topic": DEAD_LETTERS, "key": letter["source"]["topic"],
                               "value": letter})
    replay.run(records, until)
    return replay


def dump_jsonl(outputs: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(record) + b"\n" for record in outputs)
