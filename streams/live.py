"""The live shell: a worker's events through the pipeline core, and what follows to Kafka.

The path of one scan (docs/architecture.md draws it):

1. Faust's consumer delivers the event to the partition agent (`streams.agents`);
2. `Live.handle` stages it: the core admits it (`Pipeline.admit`) or dead-letters it;
3. on the stream clock, the partition's `Alignment` holds it until nothing earlier can come;
4. the core routes it (`Pipeline.route_value`): decided here, or forwarded to the
   partition that owns its person;
5. the core decides it with the person's newest state (`Pipeline.decide`, `States.get`);
6. its outputs go to the producer, its state and its partition's daily counts into a
   `Unit`;
7. the `Committer` writes the unit once its outputs are acknowledged;
8. and acknowledges the event once its rows are and every earlier unit's events are (in
   the order decided), so that Faust may commit its offset.

Nothing here decides anything: what an input becomes is the core's (the offline replay
drives the same core). Each pass over a batch holds `lock`, which the recovery after a
rebalance takes too; a raise's fan-out on the wall clock is decided in slices, so scans
keep flowing during one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from . import codec, metrics, security
from . import topics as T
from .engine import EXPOSURE, REEVALUATE, TICK, PersonState, load_policy_dir
from .engine.policy import POLICY_DIR, PolicyBook, PolicyError
from .engine.timeutil import format_date, format_ts, parse_date, parse_ts
from .outputlog import OutputLog
from .partitioning import key_partition
from .pipeline import CoreConfig, Message, Output, Pipeline, Routed, Work
from .pipeline.core import PERSON_INPUTS, TICKED
from .policy_tools import apply_publication
from .reports import AreaDay, Cells, days_to_close
from .runtime.alignment import Alignment
from .runtime.batches import send_batches
from .runtime.changelog import ChangelogWriter, parse_partition_row, partition_row_key
from .runtime.delivery import Committer, FanoutAcks, OrderedAcks, Unit, exit_undelivered, undelivered
from .runtime.duetimes import DueTimes
from .runtime.refetch import Fetcher, Refetch
from .runtime.registerfeed import RegisterFeed
from .runtime.states import States, decode
from .settings import Settings

log = logging.getLogger("checkpoint_streams")

#: visitors of a raise decided per pass on the wall clock: scans wait for at most that many
FANOUT_SLICE = 200
#: a partition's own input topics (co-partitioned; on the stream clock, merged by key)
LOCAL_TOPICS = T.INPUT_TOPICS
#: a person-work item of this kind is a partition's mark (the stream clock's)
MARK = "mark"
#: where an input's own routing counts (a pool's alert) stand among the persons it reaches:
#: counts go "through" (offset, person), persons in id order (see DayCounts)
_ROUTING = ""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class Entry:
    """One consumed record on its way through the shell."""

    message: Message
    value: Any  # the admitted input, or the person-work item
    rejected: codec.Rejected | None
    event: Any  # the Faust event to acknowledge (None: nothing to acknowledge)
    stream: Any  # the Faust stream it came from


@dataclass(slots=True)
class DayCounts:
    """One partition's counts of one local day, and how far into each of its inputs
    they go (`through`: source -> [offset, person]; see `streams.runtime.delivery`): an
    input counts its routing first, then its persons in id order, so a redelivered input
    is counted from where its counts stopped."""

    cells: dict[str, AreaDay] = field(default_factory=dict)
    through: dict[str, list[Any]] = field(default_factory=dict)
    #: each area's encoded counts (`"area":{...}` as JSON bytes), kept until the area
    #: changes: the day's row is written with every unit that counts in it, and most
    #: units change one or two areas of many
    _encoded: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)
    _order: list[str] = field(default_factory=list, compare=False, repr=False)

    def covers(self, source: str, offset: int, person: str) -> bool:
        done = self.through.get(source)
        return done is not None and (offset, person) <= (done[0], done[1])

    def add(self, area: str, counts: AreaDay) -> None:
        cell = self.cells.get(area)
        if cell is None:
            cell = self.cells[area] = AreaDay()
        cell.add(counts)
        self._encoded.pop(area, None)

    def to_json(self) -> dict[str, Any]:
        return {"cells": {area: self.cells[area].to_json() for area in sorted(self.cells)},
                "through": self.through}

    def row(self) -> bytes:
        """`orjson.dumps(self.to_json())`, from the areas' encodings kept since they last
        changed: a day's row is rewritten with each unit that counts in it, and a busy
        partition counts hundreds of areas a day."""
        encoded = self._encoded
        for area in self.cells.keys() - encoded.keys():
            encoded[area] = orjson.dumps(area) + b":" + orjson.dumps(self.cells[area].to_json())
        if len(self._order) != len(self.cells):  # cells are only ever added
            self._order[:] = sorted(self.cells)
        return b"".join((b'{"cells":{', b",".join([encoded[area] for area in self._order]),
                         b'},"through":', orjson.dumps(self.through), b"}"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DayCounts:
        return cls({area: AreaDay.from_json(c) for area, c in data["cells"].items()},
                   {source: list(done) for source, done in data["through"].items()})


@dataclass(slots=True)
class PartitionCounts:
    """The daily counts of the persons of one partition (rows of the person table)."""

    days: dict[int, DayCounts] = field(default_factory=dict)
    unwritten: set[int] = field(default_factory=set)  # days whose row changed
    unsent: set[int] = field(default_factory=set)  # days whose report parts changed

    def add(self, cells: Cells, source: str, offset: int | None, person: str) -> None:
        for (area, day), counts in cells.items():
            found = self.days.get(day)
            if found is None:
                found = self.days[day] = DayCounts()
            if offset is not None:
                if found.covers(source, offset, person):
                    continue  # counted before a crash: its row was written, its state not
                found.through[source] = [offset, person]
            found.add(area, counts)
            self.unwritten.add(day)
            self.unsent.add(day)

    def rows(self, partition: int) -> list[tuple[bytes, bytes]]:
        rows = [(counts_key(partition, day), self.days[day].row())
                for day in sorted(self.unwritten)]
        self.unwritten.clear()
        return rows


def counts_key(partition: int, day: int) -> bytes:
    return partition_row_key(partition, f"counts:{format_date(day)}")


class Live:
    """The worker's shell around one `Pipeline` (see the module docstring)."""

    def __init__(self, app: Any, settings: Settings, persons: Any) -> None:
        self.app = app
        self.settings = settings
        streaming = settings.clock == "stream"
        self.streaming = streaming
        policies = load_policy_dir(Path(settings.policy_dir) if settings.policy_dir else POLICY_DIR)
        self.core = Pipeline(policies, config=CoreConfig(
            partitions=settings.partitions,
            limits=codec.Limits(
                max_future_ms=None if streaming else settings.max_future_seconds * 1000,
                max_age_ms=settings.max_age_days * 86_400_000
                if settings.max_age_days and not streaming else None),
            max_original_bytes=settings.dead_letter_max_original_bytes,
            home=settings.home_jurisdiction,
            retention_grace=None if settings.retention_grace_days < 0
            else settings.retention_grace_days * 86_400_000,
            catch_up_to_now=not streaming))
        self.persons = persons
        self.states = States(persons, settings.state_cache)
        self.writer = ChangelogWriter(app, persons)
        self.committer = Committer(self.writer, self.states, ack=self._ack)
        self.due = DueTimes()
        self.counts: dict[int, PartitionCounts] = {}
        self.colours: dict[str, tuple[str, ...]] = {}  # person -> colours of active controls
        self.align = Alignment(settings.partitions, LOCAL_TOPICS, self._highwater,
                               self._committed) if streaming else None
        self.lock = asyncio.Lock()
        self._register_ready = False
        self.fanouts: deque[tuple[list[Work], Entry]] = deque()
        self.fanout_acks = FanoutAcks()
        self._fanning: asyncio.Task[None] | None = None
        #: (partition, target) -> the last mark sent
        self._marks: dict[tuple[int, int], tuple[Any, int]] = {}
        #: partition -> (since when its stream clock waits, when that was last logged)
        self._stuck: dict[int, tuple[float, float]] = {}
        self.recovering = False
        #: records the consumer fetched that never reached the agent (runtime.refetch)
        self.refetch = Refetch(strict=streaming)
        #: the stream clock decides some records ahead of others: acknowledged in order
        self.acks = OrderedAcks() if streaming else None
        self._stream: Any = None  # the partition agent's stream (its queue is watched)
        #: the consumer generation whose partitions were last revoked: its records are stale
        self._stale_generation = -1
        #: agent name -> running (the readiness view reports one that is not)
        self.agents: dict[str, bool] = {"partitions": False, "report_parts": False}
        #: agent name -> (monotonic time, exception type) of its last crash
        self.crashes: dict[str, tuple[float, str]] = {}
        self._names = {settings.topic(name): name for name in (*T.PARTITION_TOPICS, T.REPORT_PARTS)}
        self._inputs = frozenset(settings.topic(name) for name in T.PARTITION_TOPICS)
        self.feed = RegisterFeed(settings.broker, {
            settings.topic(T.POLICIES): self._on_policy,
            settings.topic(T.RISK_AREAS): self._on_risk_area,
            settings.topic(T.EXPOSURES): self._on_exposure,
        }, security.from_env().aiokafka(), on_batch=self._on_feed)
        #: reports: partition -> the last local day it closed (its final parts are sent)
        self.closed: dict[int, int] = {}
        #: code changes logged one line each or summed up (streams.outputlog)
        self.output_log = OutputLog(settings.log_outputs)

    # ------------------------------------------------------------- the register feed
    def _on_risk_area(self, key: bytes | None, raw: bytes | None) -> None:
        try:
            update = codec.decode(T.RISK_AREAS, raw or b"", 0, codec.Limits(None, None))
        except codec.Rejected:
            return  # dead-lettered once, by the partition that consumes it
        self.core.register.apply_update(update)

    def _on_exposure(self, key: bytes | None, raw: bytes | None) -> None:
        try:
            notice = codec.decode(T.CONTACT_NOTICES, raw or b"", 0, codec.Limits(None, None))
        except codec.Rejected:
            return
        if notice.get("kind") == "exposed_trip":
            self.core.register.apply_exposure(notice)

    def _on_policy(self, key: bytes | None, raw: bytes | None) -> None:
        """A published policy joins the book; a future valid_from takes over at that instant."""
        try:
            self.core.policies, added = apply_publication(self.core.policies, raw, key)
        except PolicyError as exc:
            log.warning("published policy refused", extra={"reason": str(exc)})
            return
        if added is not None:
            log.info("policy published", extra={"policy": added.id, "version": added.version,
                                                "valid_from": format_ts(added.valid_from)})

    def _on_feed(self) -> None:
        metrics.REGISTER_AREAS.set(len(self.core.register))
        if self.feed.ready.is_set() and not self._register_ready:
            self._register_ready = True
            metrics.REGISTER_READY.set(1)
            log.info("register ready", extra={"areas": len(self.core.register)})

    # ------------------------------------------------------------------ plumbing
    @property
    def policies(self) -> PolicyBook:
        return self.core.policies

    def partition_of(self, person: str) -> int:
        return key_partition(person.encode(), self.settings.partitions)

    def assigned(self) -> set[int]:
        topic = self.settings.topic(T.STATION_SCANS)
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    def _highwater(self, topic: str, partition: int) -> int | None:
        from aiokafka.structs import TopicPartition

        try:
            return int(self.app.consumer.highwater(TopicPartition(self.settings.topic(topic), partition)))
        except Exception:  # not assigned (a rebalance under way): not known
            return None

    def _committed(self, topic: str, partition: int) -> int | None:
        from aiokafka.structs import TopicPartition

        committed = self.app.consumer._committed_offset  # faust: acked offsets committed
        found = committed.get(TopicPartition(self.settings.topic(topic), partition))
        return None if found is None else int(found)

    async def _ack(self, entry: Entry) -> None:
        if entry.event is None:
            return
        if self.acks is None:
            await entry.stream.ack(entry.event)
            return
        raw = entry.event.message
        for ready in self.acks.done((raw.topic, raw.partition), raw.offset, entry):
            await ready.stream.ack(ready.event)

    def clock(self, partition: int | None = None) -> int:
        """Now: the wall clock, or on the stream clock the latest event time taken on
        `partition` (on any partition of this worker when None)."""
        if self.align is None:
            return now_ms()
        if partition is not None:
            return self.align.latest(partition)
        return max((self.align.latest(p) for p in self.align.tasks), default=0)

    # -------------------------------------------------------------------- agents
    def agent_crashed(self, name: str, exc: BaseException) -> None:
        """An agent raised: Faust's supervisor restarts it; readiness reports it down until
        then, and for `ready_hold_after_crash` seconds after."""
        self.agents[name] = False
        self.crashes[name] = (time.monotonic(), type(exc).__name__)
        log.error("agent crashed: Faust restarts it", extra={"agent": name, "error": repr(exc)})

    def agents_down(self, now: float | None = None) -> list[str]:
        """Agents not running, and agents restarted less than `ready_hold_after_crash`
        seconds after a crash (one line each, for /ready)."""
        now = time.monotonic() if now is None else now
        down = []
        for name, running in sorted(self.agents.items()):
            crash = self.crashes.get(name)
            if not running:
                down.append(name if crash is None else f"{name} (crashed: {crash[1]})")
            elif crash is not None and now - crash[0] < self.settings.ready_hold_after_crash:
                down.append(f"{name} (restarted {now - crash[0]:.0f} s after a crash: {crash[1]})")
        return down

    # --------------------------------------------------------------------- intake
    def _message(self, event: Any) -> Message:
        raw = event.message
        return Message(self._names.get(raw.topic, raw.topic), raw.value or b"", raw.key,
                       tuple(raw.headers or ()), raw.partition, raw.offset, name=raw.topic)

    def _stage(self, event: Any, stream: Any, now: int) -> Entry:
        message = self._message(event)
        if message.topic == T.PERSON_WORK:
            return Entry(message, orjson.loads(message.value), None, event, stream)
        try:
            value = self.core.admit(message, now)
        except codec.Rejected as rejected:
            return Entry(message, None, rejected, event, stream)
        return Entry(message, value, None, event, stream)

    async def handle(self, stream: Any, events: Iterable[Any]) -> None:
        """One batch of the partition agent (see the module docstring)."""
        started = time.perf_counter()
        count = 0
        async with self.lock:
            unit = Unit()
            sends: list[Output] = []
            now = now_ms()
            self._stream = stream
            admit, acks = self.refetch.admit, self.acks
            stale = self._stale_generation
            for event in events:
                raw = event.message
                tp = (raw.topic, raw.partition)
                if raw.generation_id <= stale or not admit(tp, raw.offset):
                    # fetched before the partitions were revoked (still in the batch
                    # Faust's `take` was filling, or taken before the new assignment:
                    # the partition's owner reads it again from the committed offset,
                    # this worker too), handed over already, or after records the
                    # consumer lost (streams.runtime.refetch): not decided here
                    continue
                if acks is not None:
                    acks.arrived(tp, raw.offset)
                count += 1
                entry = self._stage(event, stream, now)
                if self.align is None or not self._ordered(entry, unit):
                    self._process(entry, unit, sends, now)
            if self.align is not None:
                for partition in self._aligned():
                    for entry in self.align.ready(partition):
                        self._process(entry, unit, sends, now)
                sends.extend(self._marks_to_send())
            await self._send(sends, unit)
            self.committer.submit(unit)
            await self._read_again(self.refetch.take_wanted(), "skipped")
        if count:
            metrics.PROCESSING.labels("all").observe((time.perf_counter() - started) / count)
        if self.fanouts and (self._fanning is None or self._fanning.done()):
            self._fanning = asyncio.ensure_future(self._fan_out())

    def _ordered(self, entry: Entry, unit: Unit) -> bool:
        """On the stream clock: hand the entry to its partition's alignment, or take a
        mark (True); or say it is taken as it comes (dead letters, ticks)."""
        assert self.align is not None
        message, partition = entry.message, entry.message.partition
        assert partition is not None and message.offset is not None
        if entry.rejected is not None:
            return False
        if message.topic != T.PERSON_WORK:
            key = Pipeline.order_key(message.topic, entry.value, message.position)
            if self.core.relays(message, entry.value):
                self.align.passed(partition, message.topic, message.offset, key)
                return False  # handed on at once: its owner orders it
            self.align.add(partition, message.topic, message.offset, key, entry,
                           self.core.targets(message, entry.value))
            return True
        item = entry.value
        if item["kind"] == MARK:
            payload = item["payload"]
            self.align.mark(partition, payload["source"],
                            _key(payload["next"]) if payload["next"] is not None else None,
                            payload["latest"])
            unit.events.append(entry)
            return True
        source = item.get("source") or {}
        if item["kind"] == TICKED or source.get("offset") is None:
            return False
        key = Pipeline.order_key(source["topic"], item["payload"],
                                 (source["partition"], source["offset"]))
        self.align.add_item(partition, key, entry)
        return True

    # ------------------------------------------------------------------ deciding
    def _process(self, entry: Entry, unit: Unit, sends: list[Output], wall: int) -> None:
        message = entry.message
        partition = message.partition
        assert partition is not None
        now = wall if self.align is None else self.clock(partition)
        if entry.rejected is not None:
            routed = Routed(T.STREAM_LABEL.get(message.topic, message.topic), "dead_letter",
                            outputs=[self.core.dead_letter(message, entry.rejected, now)],
                            reason=entry.rejected.reason)
        elif message.topic == T.PERSON_WORK:
            routed = self.core.route_item(message, entry.value)
        else:
            routed = self.core.route_value(message, entry.value, now)
        sends.extend(routed.outputs)
        self._count(partition, routed.counts, self._source(message, entry.value), message.offset,
                    _ROUTING)
        if routed.status == "dead_letter":
            metrics.DEAD_LETTERS.labels(routed.stream, routed.reason or "unknown").inc()
            metrics.INPUTS.labels(routed.stream, "dead_letter").inc()
            log.warning("dead letter", extra={"reason": routed.reason,
                                              "topic": message.name or message.topic,
                                              "partition": partition, "offset": message.offset})
        elif routed.status == "forwarded":
            metrics.FORWARDED.labels(routed.stream).inc()
        elif message.topic != T.PERSON_WORK and not any(
                w.kind in PERSON_INPUTS for w in routed.work):
            metrics.INPUTS.labels(routed.stream, routed.status).inc()  # its routing is its fate
        if self.align is None and len(routed.work) > FANOUT_SLICE and _fans_out(routed.work):
            self.fanouts.append((routed.work, entry))
            self.fanout_acks.started(_tp(entry))
            return  # acknowledged with its last slice
        self._decide(routed.work, entry, now, unit, sends)
        self.fanout_acks.decided(_tp(entry), entry, unit.events)

    def _decide(self, works: Iterable[Work], entry: Entry, now: int, unit: Unit,
                sends: list[Output]) -> None:
        message = entry.message
        partition = message.partition
        assert partition is not None
        source = self._source(message, entry.value)
        for work in works:
            before = self.states.get(work.person)
            decision = self.core.decide(work, before, now)
            sends.extend(decision.outputs)
            fanned = work.kind in (REEVALUATE, EXPOSURE)
            self._count(partition, decision.counts, source, message.offset, work.person)
            if decision.error is not None:
                metrics.PROCESSING_ERRORS.labels(work.stream).inc()
                log.error("input not decided: dead-lettered", extra={
                    "stream": work.stream, "kind": work.kind, "error": repr(decision.error)})
            if fanned:
                metrics.REEVALUATIONS.labels("area_raise" if work.kind == REEVALUATE
                                             else "exposed_trip").inc()
            elif work.kind in PERSON_INPUTS:
                metrics.INPUTS.labels(work.stream, decision.status).inc()
            if work.kind == TICK:
                self.due.decided(work.person)
            if decision.forget:  # nothing in it can matter any more: tombstone it
                self.states.gone(work.person)
                unit.rows.append((work.person.encode(), None))
                self.due.note(work.person, None)
                self.colours.pop(work.person, None)
                metrics.PERSON_STATES_DELETED.inc()
                continue
            state = decision.state
            if state is None or state is before or not _changed(work, decision, before):
                continue
            self.states.decided(state)
            unit.states.append(state)
            self.due.note(work.person, self.core.due(state))
            self.colours[work.person] = tuple(c.colour for c in state.controls)

    def _count(self, partition: int, cells: Cells, source: str, offset: int | None,
               person: str) -> None:
        if cells:
            counts = self.counts.get(partition)
            if counts is None:
                counts = self.counts[partition] = PartitionCounts()
            counts.add(cells, source, offset, person)

    @staticmethod
    def _source(message: Message, value: Any) -> str:
        """What a partition's counts remember progress through: a topic, or on the internal
        topic the partition that forwarded (whose items come in its own order)."""
        if message.topic != T.PERSON_WORK:
            return message.topic
        origin = (value or {}).get("source") or {}
        return f"{T.PERSON_WORK}/{origin.get('partition')}"

    async def _fan_out(self) -> None:
        """Decide long fan-outs (wall clock) a slice per pass, scans between slices."""
        while self.fanouts:
            async with self.lock:
                if not self.fanouts:
                    break
                works, entry = self.fanouts[0]
                unit = Unit()
                sends: list[Output] = []
                now = now_ms()
                self._decide(works[:FANOUT_SLICE], entry, now, unit, sends)
                del works[:FANOUT_SLICE]
                if not works:
                    self.fanouts.popleft()
                    self.fanout_acks.finished(_tp(entry), entry, unit.events, _offset)
                unit.rows.extend(self._rows())
                await self._send(sends, unit)
                self.committer.submit(unit)
            await asyncio.sleep(0)

    # -------------------------------------------------------------------- sending
    def _rows(self) -> list[tuple[bytes, bytes]]:
        return [row for partition, counts in sorted(self.counts.items())
                for row in counts.rows(partition)]

    async def _send(self, outputs: list[Output], unit: Unit) -> None:
        unit.rows.extend(self._rows())
        if not outputs:
            return
        producer = await self.app.maybe_start_producer()
        sent_at = now_ms()
        topic_of = self.settings.topic
        records = []
        for output in outputs:
            key = output.key.encode() if output.key is not None else None
            records.append((topic_of(output.topic), output.partition, key,
                            orjson.dumps(output.value)))
            if output.topic in (T.CODE_CHANGES, T.ALERTS):
                _observe(output, sent_at, self.output_log)
        for batch in await send_batches(producer, records):
            batch.future.add_done_callback(
                functools.partial(undelivered, batch.topic, self._undelivered))
            unit.deliveries.append(batch.future)
            # the broker's name, as Faust's and the lag's
            metrics.OUTPUTS.labels(batch.topic).inc(batch.count)

    def _undelivered(self, topic: str, error: BaseException) -> None:
        metrics.OUTPUT_SEND_ERRORS.labels(topic).inc()
        exit_undelivered(topic, error)

    async def send(self, outputs: list[Output], rows: Iterable[tuple[bytes, bytes]] = ()) -> None:
        """Send outputs that follow from no input (ticks, marks, report parts, reports), and
        partition rows to write after them."""
        unit = Unit(rows=list(rows))
        await self._send(outputs, unit)
        self.committer.submit(unit)

    # ------------------------------------------------------------------ the clock
    def _marks_to_send(self, every: bool = False) -> list[Output]:
        """Each owned partition's mark to every other partition, when it changed (`every`:
        all of them, the periodic refresh a new owner of a partition waits for)."""
        assert self.align is not None
        out = []
        for partition in sorted(self.assigned()):
            latest = self.align.latest(partition)
            for target in range(self.settings.partitions):
                if target == partition:
                    continue
                mark = (self.align.own_mark(partition, target), latest)
                if not every and self._marks.get((partition, target)) == mark:
                    continue
                self._marks[(partition, target)] = mark
                payload = {"source": partition, "next": mark[0], "latest": mark[1]}
                out.append(Output(T.PERSON_WORK, None, {
                    "id": f"mk-{partition}-{target}", "kind": MARK, "partition": target,
                    "event_time": "1970-01-01T08:00:00+08:00", "caused_by": [],
                    "payload": payload}, target))
        return out

    async def tick_clock(self, every: bool = False) -> None:
        """On the stream clock, with no new input: take what became ready (a topic found to
        be read to its end) and send the marks that changed (`every`: all of them, after a
        rebalance, for the new owners of partitions, which know nothing yet)."""
        if self.align is None or not self.assigned():
            return
        async with self.lock:
            unit = Unit()
            sends: list[Output] = []
            for partition in self._aligned():
                for entry in self.align.ready(partition):
                    self._process(entry, unit, sends, now_ms())
                self._watch_clock(partition)
            sends.extend(self._marks_to_send(every))
            await self._send(sends, unit)
            self.committer.submit(unit)

    def _aligned(self) -> list[int]:
        """The partitions whose buffered records may be taken: those this worker owns. A
        record Faust fetched before a rebalance took its partition away may still come
        in; it waits (never acknowledged) and is dropped when the partition is revoked
        or, after a recovery, found not to be ours (its new owner reads it again)."""
        assert self.align is not None
        return sorted(set(self.align.tasks) & self.assigned())

    def _watch_clock(self, partition: int) -> None:
        """Log, at most every 30 s, why a partition's stream clock has not moved for 30 s."""
        assert self.align is not None
        reason = self.align.blocked(partition)
        if reason is None:
            self._stuck.pop(partition, None)
            return
        first, said = self._stuck.setdefault(partition, (time.monotonic(), 0.0))
        now = time.monotonic()
        if now - first >= 30 and now - said >= 30:
            self._stuck[partition] = (first, now)
            log.warning("stream clock waiting", extra={"partition": partition, "reason": reason,
                                                       "seconds": round(now - first),
                                                       "consumer": self._consumer_facts(partition)})

    def _consumer_facts(self, partition: int) -> dict[str, Any]:
        """Faust's view of the partition's topics (for the log line above)."""
        from aiokafka.structs import TopicPartition

        consumer = self.app.consumer
        try:
            kafka = consumer._thread._consumer
            paused = {(tp.topic, tp.partition) for tp in kafka.paused()}
            assigned = {(tp.topic, tp.partition) for tp in kafka.assignment()}
            assignment, buffered = _fetcher(consumer)
        except Exception:  # internals moved: the log line goes without them
            paused, assigned, assignment, buffered = set(), set(), None, {}
        facts: dict[str, Any] = {}
        for topic in LOCAL_TOPICS:
            tp = TopicPartition(self.settings.topic(topic), partition)
            fact = facts[topic] = {
                "paused": tp in getattr(consumer, "_paused_partitions", ()),
                "read_offset": getattr(consumer, "_read_offset", {}).get(tp),
                "active": tp in (getattr(consumer, "_active_partitions", None) or ()),
                "fetcher_paused": (tp.topic, tp.partition) in paused,
                "fetcher_assigned": (tp.topic, tp.partition) in assigned,
                "fetcher_buffered": tp in buffered,
            }
            with contextlib.suppress(Exception):  # not assigned there, or internals moved
                fact["fetcher_position"] = _position(assignment, tp)
        return facts

    async def refetch_lost(self) -> None:
        """Seek back partitions whose fetched records never reached the agent
        (streams.runtime.refetch); run every few seconds."""
        if self.recovering or self.app.rebalancing or self._stream is None:
            return
        consumer = self.app.consumer
        try:
            assignment, buffered = _fetcher(consumer)
            committed = consumer._committed_offset
            queue_empty = self._stream.channel.queue.empty()
        except Exception:  # no assignment yet, or internals moved (pinned by a test)
            return
        facts = {(tp.topic, tp.partition): Fetcher(_position(assignment, tp), tp in buffered,
                                                   committed.get(tp))
                 for tp in list(assignment.tps) if tp.topic in self._inputs}
        await self._read_again(self.refetch.check(facts, queue_empty), "never handed over",
                               {tp: fact.position for tp, fact in facts.items()})

    async def _read_again(self, seeks: list[tuple[tuple[str, int], int]], why: str,
                          positions: dict[tuple[str, int], int | None] | None = None) -> None:
        """Seek the consumer back over records the agent did not get (runtime.refetch)."""
        from aiokafka.structs import TopicPartition

        for (topic, partition), offset in seeks:
            log.warning("records fetched but not handed to the agent: reading them again",
                        extra={"topic": topic, "partition": partition, "offset": offset,
                               "why": why, "position": (positions or {}).get((topic, partition))})
            metrics.REFETCHES.labels(topic).inc()
            await self.app.consumer.seek(TopicPartition(topic, partition), offset)

    def due_ticks(self) -> list[Output]:
        """Tick items for every person whose due time has come on their partition's clock."""
        if self.align is None:
            fired = self.due.pop_due(now_ms())
            return [self.core.tick_item(person, now_ms()) for person, _ in fired]
        marks = {p: self.align.watermark(p) for p in self.assigned()}
        latest = max(marks.values(), default=0)

        def ready(person: str, due: int) -> bool:
            mark = marks.get(self.partition_of(person))
            return mark is not None and due <= mark

        return [self.core.tick_item(person, marks[self.partition_of(person)])
                for person, _ in self.due.pop_due(latest, ready)]

    # ------------------------------------------------------------------ rebalance
    async def revoked(self, partitions: set[int]) -> None:
        """Partitions moved away: their buffered inputs are dropped unacknowledged (their
        new owner reads them again) and what was decided is written first."""
        async with self.lock:
            if self.align is not None:
                self.align.revoke(partitions)
            self.refetch.forget(partitions)
            if self.acks is not None:
                self.acks.forget(partitions)
            self._stale_generation = max(self._stale_generation, self.app.consumer_generation_id)
            self.fanouts = deque((w, e) for w, e in self.fanouts
                                 if e.message.partition not in partitions)
            self.fanout_acks.revoke(partitions)
            await self.committer.drain()
            for partition in partitions:
                self.counts.pop(partition, None)
                self.closed.pop(partition, None)
            self._marks = {pair: mark for pair, mark in self._marks.items()
                           if pair[0] not in partitions}
            gone = [p for p in list(self.states.inflight) if self.partition_of(p) in partitions]
            self.states.forget(gone)
            self.due.forget(gone)

    async def recovered(self) -> None:
        """After a rebalance and the table's recovery: derive the index, the due times and
        the daily counts of the partitions this worker owns from their rows."""
        async with self.lock:
            self.recovering = True
            try:
                mine = self.assigned()
                if self.align is not None:  # records fetched for partitions now elsewhere
                    self.align.revoke(set(self.align.tasks) - mine)
                if self.acks is not None:
                    self.acks.forget(set(range(self.settings.partitions)) - mine)
                self.core.index = type(self.core.index)()
                self.due.clear()
                self.colours = {}
                self.counts = {p: c for p, c in self.counts.items() if p in mine}
                # a worker that owns every partition need not ask murmur2 (a third of a
                # row's cost here, for persons not in its cache) whether it owns a person
                everyone = len(mine) == self.settings.partitions
                for key, person, row in self.states.rows():  # one pass, nothing copied
                    if person is None:
                        self._recover_partition_row(key, row, mine)
                    elif everyone or self.partition_of(person) in mine:
                        state = row if isinstance(row, PersonState) else decode(row)
                        self.core.index.add(state)
                        self.colours[person] = tuple(c.colour for c in state.controls)
                        self.due.note(person, self.core.due(state))
                log.info("indexes rebuilt", extra={"visitors": len(self.core.index),
                                                   "pending": len(self.due)})
            finally:
                self.recovering = False
        await self.tick_clock(every=True)

    def _recover_partition_row(self, key: bytes, raw: Any, mine: set[int]) -> None:
        """A partition row read back: the last day a partition closed, or its counts."""
        row = parse_partition_row(key)
        if row is None or row[0] not in mine:
            return
        partition, name = row
        if name == "reports":
            self.closed[partition] = parse_date(orjson.loads(raw)["closed"])
        elif name.startswith("counts:"):
            days = self.counts.setdefault(partition, PartitionCounts()).days
            days.setdefault(parse_date(name[7:]), DayCounts.from_json(orjson.loads(raw)))

    # ----------------------------------------------------------- daily reports
    def report_parts(self, areas: Iterable[str]) -> tuple[list[Output], list[tuple[bytes, bytes]]]:
        """Each owned partition's counts of the days that changed, as report parts, and the
        days it closes now as final parts for every reporting area (`areas`, zeros
        included): its clock passed their report time. A part replaces its partition's
        earlier one; a report is filed once every partition closed its day. Returns the
        parts and the partitions' rows that remember what they closed."""
        parts, rows = [], []
        report_time = self.settings.report_time
        for partition in sorted(self.assigned()):
            counts = self.counts.setdefault(partition, PartitionCounts())
            clock = self.align.watermark(partition) if self.align is not None else now_ms()
            if clock <= 0:
                continue  # stream clock before the first event: no day has ended yet
            pending = self.due.earliest()
            if pending is not None:  # a release still to be counted holds its day open
                clock = min(clock, pending)
            closing = days_to_close(self.closed.get(partition), min(counts.days, default=None),
                                    clock, report_time)
            closed = self.closed.get(partition)
            for day in sorted(counts.unsent | set(closing)):
                final = day in closing or (closed is not None and day <= closed)
                cells = counts.days.get(day, DayCounts()).cells
                date = format_date(day)
                for area in sorted(set(cells) | (set(areas) if day in closing else set())):
                    cell = cells.get(area) or AreaDay()
                    parts.append(Output(T.REPORT_PARTS, f"{area}:{date}", {
                        "id": f"rp-{area}-{date}-{partition}", "area": area, "date": date,
                        "partition": partition, "final": final, "counts": cell.to_json()}))
            counts.unsent.clear()
            if closing:
                self.closed[partition] = closing[-1]
                rows.append((partition_row_key(partition, "reports"),
                             orjson.dumps({"closed": format_date(closing[-1])})))
        return parts, rows

    def prune_counts(self, before_day: int) -> None:
        for counts in self.counts.values():
            for day in [d for d in counts.days if d < before_day]:
                del counts.days[day]



def _fetcher(consumer: Any) -> tuple[Any, Any]:
    """aiokafka's assignment (each partition's position) and the records its fetcher
    holds, under Faust's consumer (internals pinned by tests/unit/test_runtime_pins.py)."""
    kafka = consumer._thread._consumer
    return kafka._subscription.subscription.assignment, kafka._fetcher._records


def _position(assignment: Any, tp: Any) -> int | None:
    """The fetcher's next offset for `tp` (None: not known yet)."""
    state = assignment.state_value(tp)
    return int(state.position) if state.has_valid_position else None


def _key(raw: Any) -> tuple[Any, ...]:
    """An order key back from JSON (lists to tuples, all the way down)."""
    return tuple(_key(part) if isinstance(part, list) else part for part in raw)


def _tp(entry: Entry) -> tuple[str, int]:
    """The topic partition an entry was consumed from."""
    return entry.message.name or entry.message.topic, entry.message.partition or 0


def _offset(entry: Entry) -> int:
    return entry.message.offset or 0


def _fans_out(works: list[Work]) -> bool:
    return bool(works) and works[0].kind in (REEVALUATE, EXPOSURE)


def _changed(work: Work, decision: Any, before: PersonState | None) -> bool:
    """Does the decided state need writing? Always when it emitted something or was a
    fresh input; a fan-out or a tick that did nothing may still have moved a field."""
    if decision.outputs:
        return True
    if work.kind not in (REEVALUATE, EXPOSURE, TICK) and decision.status != "duplicate":
        return True
    return bool(decision.state != before)


def _observe(output: Output, sent_at: int, outputs: OutputLog) -> None:
    event = output.value
    outcome = event["kind"]
    latency = (sent_at - parse_ts(event["event_time"])) / 1000
    metrics.E2E_LATENCY.labels(output.stream or "work", outcome).observe(max(latency, 0.0))
    if output.topic == T.CODE_CHANGES:
        metrics.CODE_CHANGES.labels(outcome, event["from"], event["to"], event["rule"]).inc()
    else:
        metrics.ALERTS.labels(outcome, event["severity"]).inc()
    outputs.emitted(output.topic, event, output.stream, latency)
