"""Offline replay: the embedded shell around the pipeline core the live workers drive.

A recording is JSONL, one record a line, in the shape a Kafka producer sends:
`{"topic": ..., "key": ..., "value": {...}}`. Records are processed in event-time order
(at the same instant the register first, then by topic, then in file order: the order
`Pipeline.order_key` gives, which is also the order a live worker on the stream clock
keeps) with in-memory state; releases fire as event time passes, and up to `until` at the
end. The output is deterministic: the same file gives byte-identical output under any
`PYTHONHASHSEED`, which is what lets a live run be checked against a replay.

A line that cannot be read becomes a dead letter where it stands in the file: with the
topic and key it names (when it names them) and the event time the replay had reached.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from . import codec
from .collector import collecting_rarely
from .engine import TICK, PersonState, PolicyBook, Register, VisitorIndex, load_policy_dir
from .engine.timeutil import parse_ts
from .pipeline import CoreConfig, Decision, Message, Pipeline, Routed, Work
from .pipeline.core import DEFAULT_RETENTION_GRACE, PERSON_INPUTS, OrderKey
from .reports import ReportTally
from .topics import STREAM_LABEL

#: the order key of a line that could not be read: after every record of its instant
_UNREADABLE_RANK = 99


@dataclass(order=True, slots=True)
class Record:
    order: OrderKey
    topic: str = field(compare=False)
    key: Any = field(compare=False)
    value: Any = field(compare=False)
    raw: bytes = field(compare=False, default=b"")
    line: int = field(compare=False, default=0)
    rejected: codec.Rejected | None = field(compare=False, default=None)

    @property
    def event_time(self) -> int:
        return self.order[0]

    @classmethod
    def of(cls, topic: str, key: Any, value: dict[str, Any], line: int = 0) -> Record:
        """A record of a recording line `{"topic", "key", "value"}` (already read)."""
        raw = orjson.dumps({"topic": topic, "key": key, "value": value})
        return cls(Pipeline.order_key(topic, value, line), topic, key, value, raw, line)


@dataclass(slots=True)
class Tally:
    """in = out + dead letters: each input ends as processed (with or without events).
    `statuses` counts every input's outcome by stream: applied, duplicate, no_policy,
    unmatched, rejected (an operator command refused), dead_letter."""

    inputs: int = 0
    processed: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    outputs: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    by_stream: dict[str, Counter[str]] = field(default_factory=dict)

    def reconciles(self) -> bool:
        return self.inputs == self.processed + self.dead_letters

    def count(self, stream: str, status: str) -> None:
        self.statuses[status] += 1
        self.by_stream.setdefault(stream, Counter())[status] += 1

    def to_json(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "processed": self.processed,
                "dead_letters": self.dead_letters, "duplicates": self.duplicates,
                "outputs": dict(sorted(self.outputs.items())),
                "statuses": dict(sorted(self.statuses.items())),
                "by_stream": {s: dict(sorted(c.items())) for s, c in sorted(self.by_stream.items())},
                "reconciles": self.reconciles()}


def read_recording(lines: Iterable[bytes]) -> tuple[list[Record], list[Record]]:
    """Parse JSONL into records sorted in processing order, and the lines that cannot be
    read (`Record.rejected` says why), placed after the record before them."""
    records: list[Record] = []
    rejected: list[Record] = []
    last_time: int | None = None
    pending: list[Record] = []  # unreadable lines before the first readable one
    for number, raw_line in enumerate(lines, start=1):
        raw = raw_line.strip()
        if not raw:
            continue
        topic, key = "replay", None
        try:
            if codec.holds_identity_number(raw):
                raise codec.Rejected("raw_identity_number", "line holds something shaped like "
                                     "a resident identity number", keep=False)
            try:
                envelope = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise codec.Rejected("malformed_json", f"not valid JSON: {str(exc)[:160]}") from None
            if isinstance(envelope, dict) and isinstance(envelope.get("topic"), str):
                topic = envelope["topic"][:255] or "replay"
                key = envelope.get("key") if isinstance(envelope.get("key"), str) else None
            if not isinstance(envelope, dict) or not isinstance(envelope.get("topic"), str) \
                    or "value" not in envelope:
                raise codec.Rejected("schema_violation", 'a line is {"topic", "key", "value"}')
            value = envelope["value"]
            try:
                event_time = parse_ts(value["event_time"])
            except (KeyError, TypeError, ValueError):
                raise codec.Rejected("schema_violation", "event_time: missing or not an "
                                     "ISO-8601 timestamp with offset",
                                     value.get("id") if isinstance(value, dict) else None) from None
            order = Pipeline.order_key(topic, value, number) if isinstance(value, dict) else \
                (event_time, _UNREADABLE_RANK, (1, number))
            records.append(Record(order, topic, key, value, raw, number))
            last_time = event_time
            for early in pending:
                early.order = (event_time, -1, (1, early.line))
            pending.clear()
        except codec.Rejected as why:
            bad = Record((last_time or 0, _UNREADABLE_RANK, (1, number)), topic, key, None, raw,
                         number, why)
            rejected.append(bad)
            if last_time is None:
                pending.append(bad)
    records.sort()
    rejected.sort()
    return records, rejected


class Replay:
    """In-memory states around a `Pipeline`; `run` feeds records through it."""

    def __init__(self, policies: PolicyBook | None = None,
                 limits: codec.Limits | None = None,
                 retention_grace: int | None = DEFAULT_RETENTION_GRACE) -> None:
        self.core = Pipeline(policies or load_policy_dir(),
                             config=CoreConfig(None, limits or codec.Limits(None, None),
                                               retention_grace=retention_grace))
        self.states: dict[str, PersonState] = {}
        self.clock = 0
        self.tally = Tally()
        self.reports = ReportTally()
        self._due: list[tuple[int, str]] = []
        #: person -> when their state was deleted, nothing in it mattering any more
        #: (`PersonState.matters_until`; docs/privacy.md)
        self.deleted: dict[str, int] = {}
        self.outputs: list[dict[str, Any]] = []

    @property
    def policies(self) -> PolicyBook:
        return self.core.policies

    @property
    def register(self) -> Register:
        return self.core.register

    @property
    def index(self) -> VisitorIndex:
        return self.core.index

    # -- plumbing ----------------------------------------------------------------
    def _emit(self, outputs: Iterable[Any]) -> None:
        for output in outputs:
            self.tally.outputs[output.topic] += 1
            self.outputs.append({"topic": output.topic, "key": output.key, "value": output.value})

    def _decide(self, work: Work) -> Decision:
        decision = self.core.decide(work, self.states.get(work.person), self.clock)
        if decision.forget:  # nothing in it can matter any more (docs/privacy.md)
            del self.states[work.person]
            self.deleted[work.person] = self.clock
        elif decision.state is not None:
            self.states[work.person] = decision.state
            due = self.core.due(decision.state)
            if due is not None:
                heapq.heappush(self._due, (due, work.person))
        self.reports.add(decision.counts)
        self._emit(decision.outputs)
        return decision

    def advance_to(self, moment: int) -> None:
        """Fire every timer due up to `moment` (event time), oldest first."""
        self.clock = max(self.clock, moment)
        while self._due and self._due[0][0] <= self.clock:
            due, person = heapq.heappop(self._due)
            state = self.states.get(person)
            if state is None or self.core.due(state) != due:
                continue  # stale heap entry: the person changed since it was pushed
            self._decide(Work(person, TICK, {}, "timer", _TIMER))

    # -- inputs ------------------------------------------------------------------
    def feed(self, record: Record) -> None:
        self.tally.inputs += 1
        self.advance_to(record.event_time)
        message = Message(record.topic, record.raw, line=record.line)
        if record.rejected is not None:
            routed = Routed(STREAM_LABEL.get(record.topic, record.topic), "dead_letter",
                            outputs=[self.core.dead_letter(message, record.rejected, self.clock)])
        else:
            try:
                value = self.core.admit(message, self.clock, parsed=record.value)
            except codec.Rejected as rejected:
                routed = Routed(STREAM_LABEL.get(record.topic, record.topic), "dead_letter",
                                outputs=[self.core.dead_letter(message, rejected, self.clock)])
            else:
                routed = self.core.route_value(message, value, self.clock)
        self._emit(routed.outputs)
        self.reports.add(routed.counts)
        if routed.status == "dead_letter":
            self.tally.dead_letters += 1
            self.tally.count(routed.stream, "dead_letter")
            return
        self.tally.processed += 1
        status = routed.status  # its routing is its fate, unless it is a person's input:
        for work in routed.work:
            decided = self._decide(work)
            if work.kind in PERSON_INPUTS:
                status = decided.status
        if status == "duplicate":
            self.tally.duplicates += 1
        self.tally.count(routed.stream, status)

    def run(self, records: Iterable[Record], until: int | None = None, *,
            dead_letters: Sequence[Record] = (),
            progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """Feed `records` (and the unreadable lines, each in its place), then pass event
        time up to `until` if given."""
        with collecting_rarely():
            for record in heapq.merge(records, sorted(dead_letters)):
                self.feed(record)
                if progress is not None:
                    progress(1)
            if until is not None:
                self.advance_to(until)
        return self.outputs


#: where a timer's tick comes from (it has no message of its own)
_TIMER = Message("timer", b"")


def replay_file(
    path: Path | str | None, until: int | None = None, policies: PolicyBook | None = None,
    stream: TextIO | None = None,
) -> Replay:
    """Replay a recording (a path, or `stream` for stdin); returns the finished run."""
    with collecting_rarely():
        if stream is not None:
            lines: Iterator[bytes] = (line.encode() for line in stream)
            records, rejected = read_recording(lines)
        else:
            with open(path, "rb") as handle:  # type: ignore[arg-type]
                records, rejected = read_recording(handle)
        replay = Replay(policies)
        replay.run(records, until, dead_letters=rejected)
    return replay


def dump_jsonl(outputs: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(record) + b"\n" for record in outputs)
