"""The pipeline core: one input message in, everything that follows out.

Sans-IO: no Faust, no Kafka, no clock (`now` is a parameter), no module-level state.
The offline replay (`streams.replay`) and the live worker (`streams.agents`) are thin
adapters around the same `Pipeline`, so routing, raise detection, fan-out, duplicate
checks and dead-letter decisions exist once:

    admit(message)      bytes -> a validated input, or a dead letter with its reason
    route(message, ..)  an input -> the person inputs to decide here (`Work`), forwards to
                        the partitions that own other persons, alerts, register changes
    decide(work, ..)    one person input + their state -> new state, code changes,
                        alerts, report counts; an exception dead-letters that input only

A `Pipeline` holds the derived views it needs: the register (risk areas, exposed trips),
the policy book and the visitor index of the persons it decides. Routing and deciding
update them; nothing else in it changes.

Partitions: live, `partitions` is the number of partitions of the person-keyed topics
and every person is decided on murmur2(person) mod that, whatever partition their input
arrived on (producers may use any partitioner: librdkafka's CRC32, an explicit
partition). An input on another partition is forwarded to the owner's partition of the
internal person-work topic, and a register change is sent to every partition, which
fans it out to its own persons. Offline (`partitions` None) everything is decided at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import codec
from .. import topics as T
from ..engine import (
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
    pool_alert,
    process,
    split_result,
    trip_key,
)
from ..engine.evaluate import DEFAULT_HOME, digest
from ..engine.register import fanout_at
from ..engine.timeutil import format_ts, local_day, parse_ts
from ..partitioning import key_partition
from ..reports import Cells, contributions

#: inputs whose own fate is their person's decision (the others' is their routing)
PERSON_INPUTS = frozenset({SCAN, COMMAND, NOTICE})
#: person-keyed input topic -> the engine's input kind
PERSON_KINDS = {T.STATION_SCANS: SCAN, T.HIGHWAY_SCANS: SCAN, T.OPERATOR_COMMANDS: COMMAND,
                T.CONTACT_NOTICES: NOTICE}
#: what an input becomes when it meets two records at the same instant: the register
#: first (a scan at the instant of a raise is judged with it), then by topic
RANK = {T.RISK_AREAS: 0, T.CONTACT_NOTICES: 1, T.PCR_RESULTS: 2, T.STATION_SCANS: 3,
        T.HIGHWAY_SCANS: 4, T.OPERATOR_COMMANDS: 5}

#: person-work kinds: a forwarded input, one member's result, a register change for one
#: partition (plain, or a raise / an exposed trip to fan out), a timer's tick
FORWARDED, MEMBER, REGISTER, RAISE, EXPOSED, TICKED = (
    "input", "result", "register", "reevaluate", "exposure", "tick")

#: ordering key of an input: (event time, rank, tie); the tie is (0, id) for register
#: entries (the order the register learns them in) and (1, position) otherwise
OrderKey = tuple[int, int, tuple[int, Any]]


#: states are deleted two days after nothing in them can matter (docs/privacy.md)
DEFAULT_RETENTION_GRACE = 2 * 86_400_000

@dataclass(frozen=True, slots=True)
class Message:
    """One record as it arrived: a Kafka message (partition, offset) or a recording line."""

    topic: str  # the contract's topic name (no deployment namespace)
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None
    offset: int | None = None
    line: int | None = None
    name: str | None = None  # the broker's name of the topic (in a deployment's namespace)

    @property
    def source(self) -> codec.Source:
        return codec.Source(self.name or self.topic, self.partition, self.offset, self.line)

    @property
    def position(self) -> Any:
        return self.line if self.partition is None else (self.partition, self.offset)


@dataclass(slots=True)
class Output:
    """A message to send: `partition` None leaves it to the key's partitioner."""

    topic: str
    key: str | None
    value: dict[str, Any]
    partition: int | None = None
    stream: str | None = None  # the input stream it follows from (metrics)


@dataclass(slots=True)
class Work:
    """One person input to decide, and where it came from."""

    person: str
    kind: str
    value: Mapping[str, Any]
    stream: str  # metric label of the input it came from
    origin: Message  # for a processing error's dead letter
    now: int | None = None  # a tick's instant


@dataclass(slots=True)
class Routed:
    """What routing one input gives: decide `work` here, send `outputs` (alerts, dead
    letters, forwards with their partition), count the input as `status`."""

    stream: str
    status: str = "applied"  # applied | duplicate | forwarded | dead_letter
    work: list[Work] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    reason: str | None = None  # a dead letter's
    counts: Cells = field(default_factory=dict)


@dataclass(slots=True)
class Decision:
    """What deciding one person input gives. On a processing error `state` is the state
    the input found (unchanged) and `outputs` holds the input's dead letter."""

    state: PersonState | None
    outputs: list[Output]
    status: str  # applied | duplicate | no_policy | unmatched | rejected | dead_letter
    counts: Cells = field(default_factory=dict)
    error: BaseException | None = None
    #: the person's state is to be deleted (the shells drop it: table tombstone, caches)
    forget: bool = False


@dataclass(frozen=True, slots=True)
class CoreConfig:
    partitions: int | None = None  # None: offline, every person decided here
    limits: codec.Limits = field(default_factory=lambda: codec.Limits(None, None))
    max_original_bytes: int = codec.DEFAULT_MAX_ORIGINAL_BYTES
    home: str | None = DEFAULT_HOME  # see `Context.home`
    #: how long a state is kept once nothing in it can matter (ms; None: for ever)
    retention_grace: int | None = DEFAULT_RETENTION_GRACE
    #: the wall clock's catch-up (see `Context.catch_up_to_now`)
    catch_up_to_now: bool = False


class Pipeline:
    """The core both shells drive (see the module docstring)."""

    def __init__(self, policies: PolicyBook, register: Register | None = None,
                 config: CoreConfig | None = None) -> None:
        self.policies = policies
        self.register = register if register is not None else Register()
        self.index = VisitorIndex()
        self.config = config or CoreConfig()

    # ------------------------------------------------------------------- helpers
    def partition_of(self, person: str) -> int | None:
        partitions = self.config.partitions
        return None if partitions is None else key_partition(person.encode(), partitions)

    def relays(self, message: Message, value: Mapping[str, Any]) -> bool:
        """Routing this input only hands it to the partition that owns its person (no
        register, no alert): it may be forwarded as soon as it is consumed."""
        if message.topic not in PERSON_KINDS or "person" not in value:  # an exposed trip has none
            return False
        owner = self.partition_of(value["person"])
        return owner is not None and owner != message.partition

    def targets(self, message: Message, value: Mapping[str, Any]) -> tuple[int, ...]:
        """The other partitions routing this input forwards something to (what the stream
        clock's marks wait for)."""
        partitions = self.config.partitions
        if partitions is None:
            return ()
        topic = message.topic
        if topic == T.RISK_AREAS or (topic == T.CONTACT_NOTICES
                                     and value.get("kind") == "exposed_trip"):
            owners: set[int] = set(range(partitions))
        elif topic == T.PCR_RESULTS:
            owners = {key_partition(person.encode(), partitions)
                      for person, _ in split_result(value)}
        elif topic in PERSON_KINDS:
            owners = {key_partition(value["person"].encode(), partitions)}
        else:
            owners = set()
        owners.discard(message.partition if message.partition is not None else -1)
        return tuple(sorted(owners))

    def dead_letter(self, message: Message, rejected: codec.Rejected, now: int, *,
                    subject: str | None = None) -> Output:
        letter = codec.dead_letter(message.source, message.value, rejected.reason,
                                   rejected.detail, now, input_id=rejected.input_id,
                                   keep_original=rejected.keep_original, subject=subject,
                                   max_original=self.config.max_original_bytes)
        return Output(T.DEAD_LETTERS, message.name or message.topic, letter)

    # ---------------------------------------------------------------------- gate
    def admit(self, message: Message, now: int, parsed: Any = None) -> dict[str, Any]:
        """The validated input of an input topic; raises `codec.Rejected`. The key and the
        headers are searched for identity numbers like the value (and never echoed).
        `parsed`: the value already parsed from `message.value` (a recording line,
        searched whole for identity numbers when it was read)."""
        if message.key is not None and codec.holds_identity_number(message.key):
            raise codec.Rejected("raw_identity_number", "the message key holds something "
                                 "shaped like a resident identity number", keep=False)
        for name, header in message.headers:
            if codec.holds_identity_number(name) or codec.holds_identity_number(header or b""):
                raise codec.Rejected("raw_identity_number", "a message header holds something "
                                     "shaped like a resident identity number", keep=False)
        if parsed is not None:
            return codec.check(message.topic, parsed, now, self.config.limits,
                               parsed_from=message.value)
        return codec.decode(message.topic, message.value, now, self.config.limits)

    @staticmethod
    def order_key(topic: str, value: Mapping[str, Any], position: Any) -> OrderKey:
        """Where an input goes among records of the same instant (see `RANK`)."""
        register_entry = topic == T.RISK_AREAS or (
            topic == T.CONTACT_NOTICES and value.get("kind") == "exposed_trip")
        tie = (0, str(value.get("id", ""))) if register_entry else (1, position)
        return parse_ts(value["event_time"]), RANK.get(topic, 9), tie

    # ------------------------------------------------------------------- routing
    def route(self, message: Message, now: int) -> Routed:
        """Admit one message of an input topic and route it (see the module docstring)."""
        stream = T.STREAM_LABEL.get(message.topic, message.topic)
        try:
            value = self.admit(message, now)
        except codec.Rejected as rejected:
            return Routed(stream, "dead_letter", outputs=[self.dead_letter(message, rejected, now)],
                          reason=rejected.reason)
        return self.route_value(message, value, now)

    def route_value(self, message: Message, value: dict[str, Any], now: int) -> Routed:
        topic = message.topic
        routed = Routed(T.STREAM_LABEL.get(topic, topic))
        if topic == T.RISK_AREAS:
            self._route_update(message, value, routed, now)
        elif topic == T.CONTACT_NOTICES and value["kind"] == "exposed_trip":
            self._route_exposed_trip(message, value, routed, now)
        elif topic == T.PCR_RESULTS:
            alerts = pool_alert(value, self.context(now))
            routed.outputs.extend(self._events(alerts, routed.stream))
            routed.counts = contributions(None, value, "applied", alerts, None, None, self.policies)
            for person, result in sorted(split_result(value), key=lambda member: member[0]):
                self._to_owner(message, routed, person, RESULT, result, MEMBER)
        elif topic in PERSON_KINDS:
            self._to_owner(message, routed, value["person"], PERSON_KINDS[topic], value, FORWARDED)
        else:
            raise AssertionError(f"no route for topic {topic}")  # admit rejects unknown topics
        return routed

    def _to_owner(self, message: Message, routed: Routed, person: str, kind: str,
                  value: Mapping[str, Any], item_kind: str) -> None:
        owner = self.partition_of(person)
        if owner is None or owner == message.partition:
            routed.work.append(Work(person, kind, value, routed.stream, message))
            return
        item = self._work_item(message, item_kind, value, person=person)
        routed.outputs.append(Output(T.PERSON_WORK, person, item, owner))
        if item_kind == FORWARDED:
            routed.status = "forwarded"

    def _work_item(self, message: Message, kind: str, payload: Mapping[str, Any], *,
                   person: str | None = None, partition: int | None = None) -> dict[str, Any]:
        """A person-work item: carries the input as validated, its origin (for ordering and
        dead letters) and an id derived from both, so a redelivery repeats it exactly."""
        item: dict[str, Any] = {
            "id": "pw-" + digest(kind, person, partition, payload["id"]),
            "kind": kind, "event_time": payload["event_time"], "caused_by": [payload["id"]],
            "source": {"topic": message.topic, "partition": message.partition,
                       "offset": message.offset},
            "payload": payload,
        }
        if person is not None:
            item["person"] = person
        if partition is not None:
            item["partition"] = partition
        return item

    def _route_update(self, message: Message, update: dict[str, Any], routed: Routed,
                      now: int) -> None:
        change = self.register.apply_update(update)
        if self.config.partitions is None:  # offline: the register is this one
            if not change.applied:
                routed.status = "duplicate"
            elif change.is_raise:
                routed.work.extend(self.fan_out(REEVALUATE, update, message, routed.stream))
            return
        kind = RAISE if change.is_raise else REGISTER
        for part in range(self.config.partitions):  # every partition learns it in order
            if part == message.partition:  # this one, now
                if change.is_raise:
                    routed.work.extend(self.fan_out(REEVALUATE, update, message, routed.stream,
                                                    partition=part))
                continue
            item = self._work_item(message, kind, update, partition=part)
            routed.outputs.append(Output(T.PERSON_WORK, update["area"], item, part))

    def _route_exposed_trip(self, message: Message, notice: dict[str, Any], routed: Routed,
                            now: int) -> None:
        applied = self.register.apply_exposure(notice)
        if self.config.partitions is None and not applied:
            routed.status = "duplicate"
            return
        alerts = exposure_alert(notice, self.context(now))
        routed.outputs.extend(self._events(alerts, routed.stream))
        routed.counts = contributions(None, notice, "applied", alerts, None, None, self.policies)
        if self.config.partitions is None:
            routed.work.extend(self.fan_out(EXPOSURE, notice, message, routed.stream))
            return
        key = trip_key(notice["trip"])
        routed.outputs.append(Output(T.EXPOSURES, key, notice))
        for part in range(self.config.partitions):
            if part == message.partition:
                routed.work.extend(self.fan_out(EXPOSURE, notice, message, routed.stream,
                                                partition=part))
                continue
            item = self._work_item(message, EXPOSED, notice, partition=part)
            routed.outputs.append(Output(T.PERSON_WORK, key, item, part))

    def route_item(self, message: Message, item: Mapping[str, Any]) -> Routed:
        """A person-work item (live only): the work it carries for this partition."""
        kind = item["kind"]
        payload = item["payload"]
        source = item.get("source") or {}
        stream = T.STREAM_LABEL.get(source.get("topic", ""), "work")
        routed = Routed(stream)
        if kind == FORWARDED:
            topic = source["topic"]
            routed.work.append(Work(item["person"], PERSON_KINDS[topic], payload, stream, message))
        elif kind == MEMBER:
            routed.work.append(Work(item["person"], RESULT, payload, stream, message))
        elif kind == TICKED:
            routed.work.append(Work(item["person"], TICK, {}, "timer", message,
                                    now=int(payload["now"])))
        elif kind in (REGISTER, RAISE):
            self.register.apply_update(payload)
            if kind == RAISE:
                routed.work.extend(self.fan_out(REEVALUATE, payload, message, stream,
                                                partition=item["partition"]))
        elif kind == EXPOSED:
            self.register.apply_exposure(payload)
            routed.work.extend(self.fan_out(EXPOSURE, payload, message, stream,
                                            partition=item["partition"]))
        else:
            raise ValueError(f"unknown person-work kind {kind!r}")
        return routed

    def fan_out(self, kind: str, entry: Mapping[str, Any], message: Message, stream: str, *,
                partition: int | None = None) -> list[Work]:
        """A raise's recent visitors, or an exposed trip's passengers, among the persons this
        pipeline decides (of one partition, live): each is brought up to date with the
        register through `entry` (`engine.process`), in person order."""
        if kind == REEVALUATE:
            since = local_day(fanout_at(entry)) - self.policies.max_lookback_days
            persons = self.index.visitors(entry["area"], since)
        else:
            persons = self.index.passengers(trip_key(entry["trip"]))
        if partition is not None:
            persons = [p for p in persons if self.partition_of(p) == partition]
        return [Work(person, kind, entry, stream, message) for person in persons]

    def tick_item(self, person: str, now: int) -> Output:
        """A timer's tick for a person whose due time came, to their partition (a tick is
        decided like any input, so that its effects are committed like any input's)."""
        payload = {"id": f"tick-{now}", "event_time": format_ts(now), "now": now}
        item = {"id": "pw-" + digest("tick", person, now), "kind": TICKED, "person": person,
                "event_time": payload["event_time"], "caused_by": [payload["id"]],
                "source": {"topic": T.PERSON_WORK, "partition": None, "offset": None},
                "payload": payload}
        return Output(T.PERSON_WORK, person, item, self.partition_of(person))

    # ------------------------------------------------------------------- deciding
    def decide(self, work: Work, state: PersonState | None, now: int) -> Decision:
        """Decide one person input; `state` is left as it was. An exception dead-letters
        this input (reason `processing_error`) and leaves the person's state unchanged."""
        clock = work.now if work.now is not None else now
        try:
            outcome = process(state, work.person, work.kind, work.value, self.context(clock))
            counts = contributions(work.kind, work.value, outcome.status, outcome.events,
                                   state, outcome.state, self.policies)
        except Exception as exc:  # the error boundary: this input only
            rejected = codec.Rejected("processing_error", f"{type(exc).__name__} while deciding "
                                      f"a {work.kind} input: {exc}"[:400],
                                      input_id=_input_id(work.value))
            letter = self.dead_letter(work.origin, rejected, now, subject=work.person)
            return Decision(state, [letter], "dead_letter", error=exc)
        if outcome.forget:
            return Decision(None, [], outcome.status, counts, forget=True)
        self.index.add(outcome.state)
        return Decision(outcome.state, self._events(outcome.events, work.stream), outcome.status,
                        counts)

    def context(self, now: int) -> Context:
        return Context(self.register, self.policies, now, self.config.home,
                       self.config.retention_grace, self.config.catch_up_to_now)

    def due(self, state: PersonState) -> int | None:
        """When a timer must next look at this person: a transition time alone makes, or
        the deletion of a state nothing in it can matter to any more."""
        times = [t for t in (state.next_due(), self.context(0).forget_at(state)) if t is not None]
        return min(times, default=None)

    @staticmethod
    def _events(events: Iterable[tuple[str, dict[str, Any]]], stream: str) -> list[Output]:
        return [Output(T.ALERTS if kind == ALERT else T.CODE_CHANGES,
                       event.get("person") or event.get("subject"), event, stream=stream)
                for kind, event in events]


def _input_id(value: Mapping[str, Any]) -> str | None:
    found = value.get("id") if isinstance(value, Mapping) else None
    return found if isinstance(found, str) else None
