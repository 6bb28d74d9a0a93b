"""The live worker: Faust agents that move data between topics, tables and the engine.

Agents stay thin: decode (or dead-letter), call the pure engine, send what it returns.
Design points, each forced by a known Kafka/Faust behaviour (see docs/architecture.md):

- At-least-once with idempotent outputs. For every batch, outputs are sent and
  acknowledged *before* the new person states are written to the table changelog, so
  a crash can only repeat outputs (same deterministic ids), never lose them.
  faust's exactly_once mode is not used (faust-streaming #323, #517, #177).
- The person table uses the key partitioner (`use_partitioner=True`): its changelog
  partition is murmur2(person), exactly the partition of every person-keyed topic, so
  the timer and batched agents may write it and a new owner recovers the right rows.
- The risk-area register is built on every worker from the compacted topic with a
  plain consumer over all partitions, not a GlobalTable (faust-streaming #283).
- Releases: a due-time index Table (partitioned like person state) feeds an in-memory
  heap that a Faust timer drains every `timer_interval`; after a rebalance the new
  owner rebuilds the heap from the recovered table and fires what is due. Windowed
  tables are not used for expiry (faust-streaming #385, #193).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import heapq
import logging
import os
import time
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from . import areas, codec, fastcheck, faustperf, metrics, security
from . import topics as T
from .changelog import ChangelogWriter, key_partition, partitioner
from .delivery import Barrier
from .engine import (
    COMMAND,
    EXPOSURE,
    NOTICE,
    REEVALUATE,
    RESULT,
    SCAN,
    TICK,
    Context,
    PersonState,
    Register,
    VisitorIndex,
    exposure_alert,
    load_policy_dir,
    pool_alert,
    process,
    split_result,
    trip_key,
)
from .engine.evaluate import digest
from .engine.policy import POLICY_DIR, PolicyError
from .engine.timeutil import format_date, format_ts, local_day, parse_ts
from .observability import install as install_observability
from .policy_tools import apply_publication
from .reports import ReportTally, due_days, merge_part, report_areas, report_from_part
from .settings import settings
from .statecache import StateCache
from .stores import register as register_keyed_rocksdb
from .streamclock import StreamClock

log = logging.getLogger("checkpoint_streams")
S = settings()
S.data_dir.mkdir(parents=True, exist_ok=True)
register_keyed_rocksdb()

app = faust.App(
    S.app_id,
    broker=f"kafka://{S.broker}",
    store=S.store,
    datadir=str(S.data_dir),
    web_host=S.web_host,
    web_port=S.web_port,
    topic_partitions=S.partitions,
    topic_replication_factor=1,
    broker_heartbeat_interval=1.0,
    broker_commit_interval=S.commit_interval,
    broker_session_timeout=10.0,
    consumer_auto_offset_reset="earliest",
    key_serializer="raw",
    value_serializer="raw",
    processing_guarantee="at_least_once",
    autodiscover=False,
    stream_wait_empty=False,
    producer_max_batch_size=S.producer_batch_bytes,
    producer_partitioner=partitioner,  # murmur2 cached: aiokafka's is pure Python (10 µs a key)
    **security.from_env().faust(),  # TLS / SASL from CHECKPOINT_SECURITY_* (default plaintext)
)
faustperf.install(app)  # Faust hot-path fixes: see streams/faustperf.py
# The cyclic collector's young generation at its default (700 allocations) ran hundreds of
# times a second on a busy worker and promoted short-lived batch objects into full passes
# over every cached state: about a fifth of a large re-evaluation's time. Person states are
# acyclic; reference counting frees them. A larger first threshold keeps cycles collected.
gc.set_threshold(S.gc_threshold, 20, 100)
# Every output gets a log line (see `_observe`); the JSON lines use none of the record's
# caller, thread or process fields, which `logging` otherwise looks up for each record
# (the logging HOWTO's "Optimization" knobs): about 5 µs a line.
logging._srcfile = None
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False


def _topic(name: str) -> faust.TopicT:
    return app.topic(name, key_type=bytes, value_type=bytes, value_serializer="raw",
                     key_serializer="raw")


station_scans = _topic(T.STATION_SCANS)
highway_scans = _topic(T.HIGHWAY_SCANS)
risk_areas = _topic(T.RISK_AREAS)
pcr_results = _topic(T.PCR_RESULTS)
contact_notices = _topic(T.CONTACT_NOTICES)
operator_commands = _topic(T.OPERATOR_COMMANDS)
person_work = _topic(T.PERSON_WORK)
area_work = _topic(T.AREA_WORK)
code_changes = _topic(T.CODE_CHANGES)
alerts = _topic(T.ALERTS)
dead_letters = _topic(T.DEAD_LETTERS)
exposures = _topic(T.EXPOSURES)
reports_topic = _topic(T.REPORTS)
report_parts = _topic(T.REPORT_PARTS)

# Table keys are the raw UTF-8 bytes of the person (key_type=bytes: raw serializer), exactly
# the bytes of the input topics' keys. With key_type=str Faust would JSON-quote the key and
# `use_partitioner` would file a person's state under another partition than their inputs.
persons = app.Table("persons", key_type=bytes, value_type=bytes,
                    partitions=S.partitions, use_partitioner=True)
# area:date -> {"counts": merged report counts, "parts": ids of the parts already added}
report_counts = app.Table("report-counts", key_type=bytes, value_type=bytes,
                          partitions=S.partitions, use_partitioner=True)


#: the topics whose partition p holds inputs of the persons of partition p (the stream
#: clock's watermark waits for each of them; pcr results are keyed by sample or tube and
#: reach their persons as person work)
PERSON_TOPICS = (T.STATION_SCANS, T.HIGHWAY_SCANS, T.OPERATOR_COMMANDS, T.CONTACT_NOTICES,
                 T.PERSON_WORK, T.AREA_WORK)


class Runtime:
    """Per-worker derived state: register, visitor index, release heap, one engine lock."""

    def __init__(self) -> None:
        self.policies = load_policy_dir(Path(S.policy_dir) if S.policy_dir else POLICY_DIR)
        self.register = Register()
        self.index = VisitorIndex()
        self.heap: list[tuple[int, str]] = []
        #: person -> their next due time, derived from the state (`PersonState.next_due`)
        #: whenever it is saved or recovered: the heap entry that matches it is current
        self.due: dict[str, int] = {}
        #: person -> colours of their active controls (gauges without decoding every state)
        self.colours: dict[str, tuple[str, ...]] = {}
        self.lock = asyncio.Lock()
        #: orders state saves after the outputs they depend on
        self.barrier = Barrier()
        self.reports = ReportTally()
        self.last_report_day: int | None = None
        self.report_queue: list[int] = []
        self.register_ready = asyncio.Event()
        #: stream clock: event time consumed per topic and partition (a person's timers
        #: follow the watermark of their own partition: see streams/streamclock.py)
        self.stream = StreamClock(PERSON_TOPICS)
        streaming = S.clock == "stream"
        self.limits = codec.Limits(
            max_future_ms=None if streaming else S.max_future_seconds * 1000,
            max_age_ms=S.max_age_days * 86_400_000 if S.max_age_days and not streaming else None,
        )

    def clock(self, partition: int | None = None) -> int:
        """Now: the wall clock, or in stream mode the largest event time consumed on
        `partition` (an input's now), on any partition when None (index expiry, policies,
        reports). Release timers follow `timer_clock`."""
        if S.clock != "stream":
            return now_ms()
        return self.stream.now(partition)

    def timer_clock(self, partition: int) -> int:
        """Now, for the timers of `partition`: the wall clock, or in stream mode its
        watermark (held back to any of its topics with records still to process)."""
        if S.clock != "stream":
            return now_ms()
        return self.stream.watermark(partition, _highwater, _committed)

    def assigned(self) -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives()
                if tp.topic == T.STATION_SCANS}


def _highwater(topic: str, partition: int) -> int | None:
    try:
        return app.consumer.highwater(TopicPartition(topic, partition))
    except Exception:  # not assigned to the consumer (a rebalance under way): not known
        return None


def _committed(topic: str, partition: int) -> int | None:
    return app.consumer._committed_offset.get(TopicPartition(topic, partition))  # type: ignore[attr-defined]


rt = Runtime()


def now_ms() -> int:
    return int(time.time() * 1000)


def partition_of(person: str) -> int:
    """The Kafka default partitioner (murmur2), as the producers and the table use it."""
    return key_partition(person.encode(), S.partitions)


#: decoded states of persons written lately: `load_state` takes them, `_take_decided`
#: puts them back as their new value goes to the table
_decoded = StateCache(S.state_cache)
#: person -> (new table value, its PersonState or None once handed out) for states whose
#: batch's outputs are still in flight: decided, not yet in the table (see `apply`).
_inflight: dict[str, tuple[bytes, PersonState | None]] = {}


def load_state(person: str) -> PersonState | None:
    """The person's newest state: in flight (decided, outputs not yet acknowledged) or in
    the table. The object is the caller's to change; nobody else holds it."""
    entry = _inflight.get(person)
    if entry is not None:
        decided, state = entry
        if state is None:
            return PersonState.from_json(orjson.loads(decided))
        _inflight[person] = (decided, None)
        return state
    raw = persons.get(person.encode())
    if not raw:
        return None
    cached = _decoded.take(person, raw)
    if cached is not None:
        return cached
    return PersonState.from_json(orjson.loads(raw))


def _take_decided(person: str, raw: bytes) -> bool:
    """Take a decided state out of `_inflight` to be written (`_save_all`), unless a later
    batch decided this person again: that batch writes its own state, after its outputs
    and therefore ours."""
    entry = _inflight.get(person)
    if entry is None or entry[0] is not raw:
        return False
    del _inflight[person]
    if entry[1] is not None:
        _decoded.put(person, raw, entry[1])
    return True


# ------------------------------------------------------------------------- outputs
def _observe(kind: str, event: dict[str, Any], stream: str, sent_at: int) -> None:
    outcome = event["kind"]
    latency = (sent_at - parse_ts(event["event_time"])) / 1000
    metrics.E2E_LATENCY.labels(stream, outcome).observe(max(latency, 0.0))
    if kind == "code_change":
        metrics.CODE_CHANGES.labels(outcome, event["from"], event["to"], event["rule"]).inc()
    else:
        metrics.ALERTS.labels(outcome, event["severity"]).inc()
    log.info(kind.replace("_", " "), extra={
        "output_id": event["id"], "kind": outcome, "input_id": (event.get("caused_by") or [None])[0],
        "caused_by": event.get("caused_by"), "stream": stream, "latency_seconds": round(latency, 3),
        **({"from": event["from"], "to": event["to"], "rule": event["rule"]} if kind == "code_change"
           else {"severity": event["severity"]})})


async def _send(topic: faust.TopicT, key: str | None, value: dict[str, Any],
                partition: int | None = None) -> Awaitable[Any]:
    """Send now (not attached to the input's commit) and return the delivery future.

    Through the app's producer (`ProducerT.send`), not `Topic.send`: the Topic's
    per-message machinery (FutureMessage, callbacks, sensor hooks) cost about 40 µs a
    message, as much again as the send itself. A failed delivery is counted
    (`checkpoint_output_send_errors_total`) and ends the worker (`_delivered`).
    """
    name = topic.get_topic_name()
    metrics.OUTPUTS.labels(name).inc()
    producer = await app.maybe_start_producer()
    delivery = await producer.send(name, key.encode() if key else None, orjson.dumps(value),
                                   partition, None, None)
    delivery.add_done_callback(functools.partial(_delivered, name))
    return delivery


#: the worker's exit status when an output could not be delivered
EXIT_UNDELIVERED = 70


def _delivered(topic: str, delivery: asyncio.Future[Any]) -> None:
    """An output the producer gave up on ends the worker at once, before anything else runs.

    Faust acknowledges a batch's events even when the agent fails, and commits their
    offsets on an agent error and on shutdown: an input whose output was lost would
    then never be processed again. Exiting here (this callback runs before the batch's
    barrier learns of the failure) commits nothing further; the supervisor restarts the
    worker, which resumes from the committed offsets and sends the same outputs again.
    """
    if delivery.cancelled() or delivery.exception() is None:
        return
    metrics.OUTPUT_SEND_ERRORS.labels(topic).inc()
    log.critical("output not delivered: exiting so that its input is processed again",
                 extra={"topic": topic, "error": repr(delivery.exception()),
                        "exit_status": EXIT_UNDELIVERED})
    logging.shutdown()
    os._exit(EXIT_UNDELIVERED)


#: writes decided states: the store at once, the changelog record through the producer
state_writer = ChangelogWriter(app, persons, failed=_delivered)
metrics.OUTPUT_SEND_ERRORS.labels(state_writer.topic)  # at 0 from the start, as the outputs'


async def _emit(events: Iterable[tuple[str, dict[str, Any]]], stream: str,
                pending: list[Awaitable[Any]]) -> None:
    sent_at = now_ms()
    for kind, event in events:
        topic = code_changes if kind == "code_change" else alerts
        pending.append(await _send(topic, event.get("person") or event.get("subject"), event))
        _observe(kind, event, stream, sent_at)


async def _dead_letter(stream: str, message: Any, rejected: codec.Rejected,
                       pending: list[Awaitable[Any]]) -> None:
    source = codec.Source(message.topic, message.partition, message.offset)
    letter = codec.dead_letter(source, message.value or b"", rejected.reason, rejected.detail,
                               now_ms(), input_id=rejected.input_id,
                               keep_original=rejected.keep_original)
    metrics.DEAD_LETTERS.labels(stream, rejected.reason).inc()
    metrics.INPUTS.labels(stream, "dead_letter").inc()
    log.warning("dead letter", extra={"input_id": letter["input_id"], "reason": rejected.reason,
                                      "topic": message.topic, "partition": message.partition,
                                      "offset": message.offset})
    pending.append(await _send(dead_letters, message.topic, letter))


# ---------------------------------------------------------------------- the engine
async def apply(items: list[tuple[str, str, dict[str, Any], str]],
                pending: list[Awaitable[Any]], topic: str | None = None) -> None:
    """Run person inputs through the engine; outputs are acknowledged before state is saved.

    Called with `rt.lock` held, which it releases while this batch's outputs are in
    flight, so that other agents decide meanwhile instead of the worker idling through a
    broker round trip per batch (that wait was a third of a worker's time).
    """
    settled = await decide(items, pending, topic)
    if settled.done():
        return
    rt.lock.release()
    try:
        await asyncio.shield(settled)  # a cancelled agent must not stop the save
    finally:
        await _reacquire(rt.lock)


async def _reacquire(lock: asyncio.Lock) -> None:
    """Take `lock` back for the caller's `async with`, even through a cancellation (which
    is raised once the lock is held: the caller's exit then releases a lock it holds)."""
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            await lock.acquire()
            break
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        raise cancelled


async def decide(items: list[tuple[str, str, dict[str, Any], str]],
                 pending: list[Awaitable[Any]], topic: str | None = None) -> asyncio.Future[None]:
    """Decide a batch (with `rt.lock` held) and send its outputs; the returned future is
    done once the batch's states are in the table. `topic`: where the inputs came from
    (the stream clock's; None for timer ticks).

    Decided states wait in `_inflight`, where the next input of the same person finds
    them. A batch's states go to the table only once its own outputs *and every earlier
    batch's* are acknowledged (`rt.barrier` chains them): a state may hold an earlier
    batch's effects, such as the ids of inputs it has seen. A caller may decide its next
    batch before this one is settled (`area_work_agent` does, slice after slice).
    """
    changed: dict[str, PersonState] = {}
    streaming = S.clock == "stream"
    for person, kind, value, stream in items:
        state = changed[person] if person in changed else load_state(person)
        if not streaming:
            now = now_ms()
        elif kind == TICK:
            now = rt.timer_clock(partition_of(person))
        else:
            part = partition_of(person)
            rt.stream.saw(topic or T.PERSON_WORK, part, parse_ts(value["event_time"]))
            now = rt.clock(part)
        outcome = process(state, person, kind, value, Context(rt.register, rt.policies, now))
        changed[person] = outcome.state
        if kind != TICK:
            metrics.INPUTS.labels(stream, outcome.status).inc()
        if kind == SCAN:
            rt.reports.arrival(value, outcome.status)
        rt.reports.observe(outcome.events, person_area=_arrival_area(outcome.state),
                           cause=None if kind == TICK else value, book=rt.policies)
        await _emit(outcome.events, stream, pending)
    decided: list[tuple[str, bytes]] = []
    for person, state in changed.items():
        raw = orjson.dumps(state)
        _inflight[person] = (raw, state)
        decided.append((person, raw))
        rt.index.add(state)
        rt.colours[person] = tuple(c.colour for c in state.controls)
        _note_due(person, state.next_due())
    barrier = rt.barrier.chain(pending)
    if barrier is None:
        await _save_all(decided)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done
    return asyncio.ensure_future(_settle(barrier, decided))


async def _settle(barrier: asyncio.Future[Any], decided: list[tuple[str, bytes]]) -> None:
    """Save once delivered. Needs no engine lock: the store writes happen in one step (no
    suspension) and only for entries that no later decision replaced."""
    await asyncio.shield(barrier)
    await _save_all(decided)


async def _save_all(decided: list[tuple[str, bytes]]) -> None:
    """Save the states no later decision replaced; their changelog records are sent by
    `state_writer` (Faust's own changelog write cost about 40 µs a record more)."""
    await state_writer.write((person.encode(), raw) for person, raw in decided
                             if _take_decided(person, raw))


def _note_due(person: str, due: int | None) -> None:
    """Keep the release heap in step with a person's next due time (from their state: the
    due time is not stored anywhere else, so it costs no changelog record of its own)."""
    if due is None:
        rt.due.pop(person, None)
    elif rt.due.get(person) != due:
        rt.due[person] = due
        heapq.heappush(rt.heap, (due, person))


def _arrival_area(state: PersonState) -> Any:
    """For reports: where a person's events count (their latest arrival checkpoint)."""
    area: str | None = (state.arrival or {}).get("area")
    return lambda _person: area


def _decode(topic: str, message: Any) -> dict[str, Any]:
    return codec.decode(topic, message.value or b"", now_ms(), rt.limits)


async def _consume(stream: Any, topic: str) -> None:
    """Shared loop of the person-keyed input agents."""
    label = T.STREAM_LABEL[topic]
    await rt.register_ready.wait()
    # warm the gate before the first event: the compiled schema and the division table
    # load on first use, which would otherwise land on the first scans' latency
    fastcheck.available(T.INPUT_SCHEMAS[topic])
    areas.is_known("14")
    # everything loaded so far lives as long as the worker: keep it out of the cyclic
    # collector, whose full passes over it took 100-160 ms (the p99 latency) on the bench
    gc.freeze()
    async for events in stream.take_events(S.batch_size, within=S.batch_within):
        started = time.perf_counter()
        async with rt.lock:
            pending: list[Awaitable[Any]] = []
            items: list[tuple[str, str, dict[str, Any], str]] = []
            for event in events:
                try:
                    value = _decode(topic, event.message)
                except codec.Rejected as rejected:
                    await _dead_letter(label, event.message, rejected, pending)
                    continue
                items.extend(await _route(topic, value, label, pending))
            await apply(items, pending, topic)
            _processed(topic, events)
        if events:
            metrics.PROCESSING.labels(label).observe((time.perf_counter() - started) / len(events))


def _processed(topic: str, events: Iterable[Any]) -> None:
    """Tell the stream clock these records are done with (see streams/streamclock.py)."""
    if S.clock == "stream":
        for event in events:
            rt.stream.processed(topic, event.message.partition, event.message.offset)


async def _route(topic: str, value: dict[str, Any], label: str,
                 pending: list[Awaitable[Any]]) -> list[tuple[str, str, dict[str, Any], str]]:
    """Which person inputs one decoded message becomes (fan-outs go through person-work)."""
    if topic in (T.STATION_SCANS, T.HIGHWAY_SCANS):
        return [(value["person"], SCAN, value, label)]
    if topic == T.OPERATOR_COMMANDS:
        return [(value["person"], COMMAND, value, label)]
    if topic == T.CONTACT_NOTICES:
        if value["kind"] != "exposed_trip":
            return [(value["person"], NOTICE, value, label)]
        pending.append(await _send(exposures, trip_key(value["trip"]), value))
        alert = exposure_alert(value, Context(rt.register, rt.policies, now_ms()))
        rt.reports.observe(alert, cause=value, book=rt.policies)
        await _emit(alert, label, pending)
        metrics.INPUTS.labels(label, "applied").inc()
        return []
    if topic == T.PCR_RESULTS:
        alert = pool_alert(value, Context(rt.register, rt.policies, now_ms()))
        rt.reports.observe(alert, cause=value, book=rt.policies)
        await _emit(alert, label, pending)
        for person, result in split_result(value):
            pending.append(await _send(person_work, person, _work("result", person, result, [value["id"]])))
        metrics.INPUTS.labels(label, "applied").inc()
        return []
    raise AssertionError(topic)


def _work(kind: str, person: str, payload: dict[str, Any], caused_by: list[str]) -> dict[str, Any]:
    return {"id": "pw-" + digest(kind, person, *caused_by), "kind": kind, "person": person,
            "event_time": payload["event_time"], "caused_by": caused_by, "payload": payload}


#: person-work kinds ("reevaluate" items of earlier versions still in the topic are honoured)
WORK_KINDS = {"result": RESULT, "exposure": EXPOSURE, "reevaluate": REEVALUATE}


@app.agent(station_scans)
async def station_agent(stream: Any) -> None:
    await _consume(stream, T.STATION_SCANS)


@app.agent(highway_scans)
async def highway_agent(stream: Any) -> None:
    await _consume(stream, T.HIGHWAY_SCANS)


@app.agent(operator_commands)
async def command_agent(stream: Any) -> None:
    await _consume(stream, T.OPERATOR_COMMANDS)


@app.agent(contact_notices)
async def notice_agent(stream: Any) -> None:
    await _consume(stream, T.CONTACT_NOTICES)


@app.agent(pcr_results)
async def result_agent(stream: Any) -> None:
    await _consume(stream, T.PCR_RESULTS)


@app.agent(person_work)
async def work_agent(stream: Any) -> None:
    """Work routed to this person's owner: pooled members, passengers, re-evaluations."""
    await rt.register_ready.wait()
    async for events in stream.take_events(S.batch_size, within=S.batch_within):
        async with rt.lock:
            items = []
            for event in events:
                work = orjson.loads(event.message.value)
                items.append((work["person"], WORK_KINDS[work["kind"]], work["payload"],
                              "work:" + work["kind"]))
            await apply(items, [], T.PERSON_WORK)
            _processed(T.PERSON_WORK, events)


#: visitors decided per hold of the engine lock in a fan-out: small enough that scans wait
#: tens of milliseconds at most behind a large re-evaluation
AREA_SLICE = 100


@app.agent(area_work)
async def area_work_agent(stream: Any) -> None:
    """Re-evaluate this partition's recent visitors of a raised area (C2), a slice at a time.

    The visitors come from this worker's own index, which holds exactly the persons whose
    state it owns. Each slice is decided like any batch (`decide`), the lock free between
    slices (scans keep flowing during a large fan-out); the next slice does not wait for
    the last one's acknowledgements, and outputs still precede states.
    The item is acknowledged only when every slice is done; redelivered after a crash, it
    re-evaluates nobody twice (each person remembers the update's id)."""
    await rt.register_ready.wait()
    async for event in stream.events():
        work = orjson.loads(event.message.value)
        update, part = work["payload"], work["partition"]
        effective = max(parse_ts(update["event_time"]), parse_ts(update["effective_at"]))
        since = local_day(effective) - rt.policies.max_lookback_days
        async with rt.lock:
            # in the same hold as the snapshot: a scan decided after it is judged with the
            # raise, one decided before it is in the snapshot
            rt.register.apply_update(update)
            visitors = [p for p in rt.index.visitors(update["area"], since)
                        if partition_of(p) == part]
        settling: list[asyncio.Future[None]] = []
        for start in range(0, len(visitors), AREA_SLICE):
            batch = visitors[start:start + AREA_SLICE]
            async with rt.lock:
                if part not in rt.assigned():
                    break  # moved to another worker, which redoes the item from its start
                settling.append(await decide(
                    [(p, REEVALUATE, update, "work:reevaluate") for p in batch], [], T.AREA_WORK))
            metrics.REEVALUATIONS.labels("area_raise").inc(len(batch))
        await asyncio.shield(asyncio.gather(*settling))
        _processed(T.AREA_WORK, [event])


@app.agent(risk_areas)
async def risk_area_gate(stream: Any) -> None:
    """Counts and dead-letters risk-area updates once per cluster, and sends a raise to the
    owner of every partition (area work); every worker's register reads the same topic
    separately (see `register_feed`)."""
    label = T.STREAM_LABEL[T.RISK_AREAS]
    await rt.register_ready.wait()  # `raises` compares with the history before the update
    async for event in stream.events():
        pending: list[Awaitable[Any]] = []
        try:
            update = _decode(T.RISK_AREAS, event.message)
            metrics.INPUTS.labels(label, "applied").inc()
            if rt.register.raises(update):
                for part in range(S.partitions):
                    item = {"id": "aw-" + digest("reevaluate", update["id"], part),
                            "kind": "reevaluate", "partition": part,
                            "event_time": update["event_time"], "caused_by": [update["id"]],
                            "payload": update}
                    pending.append(await _send(area_work, update["area"], item, partition=part))
        except codec.Rejected as rejected:
            await _dead_letter(label, event.message, rejected, pending)
        if pending:
            await asyncio.gather(*pending)


# ------------------------------------------------------------------- the register
@app.task
async def register_feed() -> None:
    """Build the whole register on this worker from the compacted topics, then follow them."""
    consumer = AIOKafkaConsumer(bootstrap_servers=S.broker, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None,
                                **security.from_env().aiokafka())
    await consumer.start()
    try:
        # aiokafka's public topics() does not keep the metadata it fetched; ask the client.
        cluster = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(topic, p) for topic in (T.POLICIES, T.RISK_AREAS, T.EXPOSURES)
                 for p in sorted(cluster.partitions_for_topic(topic) or ())]
        if not parts:
            raise RuntimeError(f"topics {T.RISK_AREAS} and {T.EXPOSURES} are missing: "
                               "create them first (checkpoint-streams topics)")
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        while not app.should_stop:
            batch = await consumer.getmany(timeout_ms=200, max_records=2000)
            async with rt.lock:
                for tp, messages in batch.items():
                    for message in messages:
                        if tp.topic == T.POLICIES:
                            _policy_message(message.key, message.value)
                            continue
                        await _register_message(tp.topic, message.value,
                                                fan_out=rt.register_ready.is_set())
            if not rt.register_ready.is_set():
                positions = {tp: await consumer.position(tp) for tp in parts}
                if all(positions[tp] >= end[tp] for tp in parts):
                    rt.register_ready.set()
                    metrics.REGISTER_READY.set(1)
                    log.info("register ready", extra={"areas": len(rt.register)})
            metrics.REGISTER_AREAS.set(len(rt.register))
    finally:
        await consumer.stop()


def _policy_message(key: bytes | None, raw: bytes | None) -> None:
    """A published policy joins the book; a future valid_from takes over at that instant."""
    try:
        rt.policies, added = apply_publication(rt.policies, raw, key)
    except PolicyError as exc:
        log.warning("published policy refused", extra={"reason": str(exc)})
        return
    if added is not None:
        log.info("policy published", extra={"policy": added.id, "version": added.version,
                                            "valid_from": format_ts(added.valid_from)})


async def _register_message(topic: str, raw: bytes | None, *, fan_out: bool) -> None:
    try:
        value = codec.decode(topic if topic == T.RISK_AREAS else T.CONTACT_NOTICES, raw or b"",
                             now_ms(), codec.Limits(None, None))
    except codec.Rejected:
        return  # dead-lettered once by risk_area_gate / notice_agent
    if topic == T.RISK_AREAS:
        rt.register.apply_update(value)  # a raise reaches its visitors as area work
        return
    if not rt.register.apply_exposure(value) or not fan_out:
        return
    pending: list[Awaitable[Any]] = []
    mine = rt.assigned()
    for person in rt.index.passengers(trip_key(value["trip"])):
        if partition_of(person) in mine:
            pending.append(await _send(person_work, person,
                                       _work("exposure", person, value, [value["id"]])))
            metrics.REEVALUATIONS.labels("exposed_trip").inc()
    if pending:
        await asyncio.gather(*pending)


# ---------------------------------------------------------------------- releases
@persons.on_recover
async def _rebuild_indexes() -> None:
    """After (re)assignment and changelog recovery, derive index and heap for our persons."""
    async with rt.lock:
        mine = rt.assigned()
        rt.stream.forget(set(range(S.partitions)) - mine)
        rt.index = VisitorIndex()
        rt.colours = {}
        rt.heap = []
        rt.due = {}
        rows = {key.decode(): raw for key, raw in list(persons.items()) if raw}
        # decided states whose outputs are still in flight are newer than their table rows
        rows.update((person, entry[0]) for person, entry in _inflight.items())
        for person, raw in rows.items():
            if partition_of(person) in mine:
                state = PersonState.from_json(orjson.loads(raw))
                rt.index.add(state)
                rt.colours[person] = tuple(c.colour for c in state.controls)
                _note_due(person, state.next_due())
        log.info("indexes rebuilt", extra={"visitors": len(rt.index), "pending": len(rt.heap)})


@app.timer(interval=S.timer_interval)
async def release_timer() -> None:
    """Fire every transition due by now for persons this worker owns."""
    if not rt.register_ready.is_set():
        return
    async with rt.lock:
        now = rt.clock()
        mine = rt.assigned()
        due_people: dict[str, int] = {}
        later: list[tuple[int, str]] = []
        overdue = 0
        marks: dict[int, int] = {}  # stream clock: each partition's watermark, once a tick
        while rt.heap and rt.heap[0][0] <= now:
            due, person = heapq.heappop(rt.heap)
            part = partition_of(person)
            if rt.due.get(person) != due or part not in mine:
                continue  # stale entry
            if S.clock == "stream":
                if part not in marks:
                    marks[part] = rt.timer_clock(part)
                if due > marks[part]:
                    later.append((due, person))  # its own partition has not reached that time
                    continue
            due_people.setdefault(person, due)
            if due < now - 2 * S.timer_interval * 1000:
                overdue += 1
        for entry in later:
            heapq.heappush(rt.heap, entry)
        metrics.OVERDUE_RELEASES.set(overdue)
        if overdue and S.clock == "wall":  # in stream mode event time jumps: late by design
            log.error("overdue releases", extra={"overdue": overdue, "timer_interval": S.timer_interval})
        for due in due_people.values():
            metrics.RELEASE_DELAY.observe(max(now - due, 0) / 1000)
        if due_people:
            for person in due_people:
                del rt.due[person]  # `apply` notes the next due time, even an unchanged one
            try:
                await apply([(p, TICK, {}, "timer") for p in sorted(due_people)], [])
            except BaseException:
                for person, due in due_people.items():  # not fired: due again next tick
                    _note_due(person, rt.due.get(person, due))
                raise
        metrics.PENDING_RELEASES.set(len(rt.heap))
        metrics.VISITOR_INDEX.set(len(rt.index))
        metrics.RELEASE_TIMER_LAST_RUN.set_to_current_time()


@app.timer(interval=3600.0)
async def expire_index() -> None:
    """Visits older than the longest lookback window can no longer change anyone's code."""
    async with rt.lock:
        rt.index.expire(local_day(rt.clock()) - rt.policies.max_lookback_days - 1)


@app.timer(interval=10.0)
async def state_gauges() -> None:
    """Persons and active controls owned here, from the per-person summary kept by apply()."""
    counts = {"red": 0, "yellow": 0, "green": 0}
    for colours in rt.colours.values():
        for colour in colours:
            counts[colour] += 1
    people = len(rt.colours)
    metrics.PERSONS.set(people)
    for colour, count in counts.items():
        metrics.ACTIVE_CONTROLS.labels(colour).set(count)
    metrics.POLICY_IN_FORCE.clear()
    for policy in rt.policies.policies:
        if rt.policies.in_force(policy.jurisdiction, rt.clock()) is policy:
            metrics.POLICY_IN_FORCE.labels(policy.jurisdiction, policy.id, str(policy.version)).set(1)


# ------------------------------------------------------------------------ daily reports
@app.timer(interval=S.report_interval)
async def daily_reports() -> None:
    """Flush this worker's counts to their owners, then file every report that is due.

    Each worker counts only the persons it owns; parts keyed `area:date` meet on the one
    worker owning that key, which adds them up (report_part_agent) and sends the report
    of that area and day, zeros included, at the configured local time the next day.
    """
    if not rt.register_ready.is_set():
        return
    async with rt.lock:
        pending = []
        for key, counts in rt.reports.drain_parts():
            area, date = key.split(":", 1)
            part = {"id": "rp-" + digest(key, time.time_ns(), id(rt)), "area": area, "date": date,
                    "counts": counts}
            pending.append(await _send(report_parts, key, part))
        if pending:
            await asyncio.gather(*pending)
        now = rt.clock()
        if now == 0:
            return  # stream clock before the first event: no day has ended yet
        # File the days that fell due at the previous tick: their last parts, flushed by
        # every worker since, have been merged by now.
        to_file, rt.report_queue = rt.report_queue, due_days(now, rt.last_report_day, S.report_time)
        if rt.report_queue:
            rt.last_report_day = rt.report_queue[-1]
        mine = rt.assigned()
        for day in to_file:
            date = format_date(day)
            areas = set(report_areas(rt.policies, S.report_areas))
            areas.update(key.decode().split(":", 1)[0] for key in list(report_counts.keys())
                         if key.decode().endswith(":" + date))
            sent = []
            for area in sorted(areas):
                key = f"{area}:{date}"
                if partition_of(key) not in mine:
                    continue
                raw = report_counts.get(key.encode())
                report = report_from_part(key, orjson.loads(raw)["counts"] if raw else None, now_ms())
                sent.append(await _send(reports_topic, key, report))
            if sent:
                await asyncio.gather(*sent)
            rt.reports.prune(day - 8)


@app.agent(report_parts)
async def report_part_agent(stream: Any) -> None:
    async for event in stream.events():
        part = orjson.loads(event.message.value)
        key = f"{part['area']}:{part['date']}"
        raw = report_counts.get(key.encode())
        current = orjson.loads(raw) if raw else {"counts": None, "parts": []}
        if part["id"] in current["parts"]:
            continue  # a redelivered part: counted once
        current["counts"] = merge_part(current["counts"], part["counts"])
        current["parts"] = [*current["parts"], part["id"]][-500:]
        report_counts[key.encode()] = orjson.dumps(current)


# ------------------------------------------------------------------------ web views
@app.page("/health")
async def health(web: Any, request: Any) -> Any:
    return web.json({"status": "ok"})


@app.page("/ready")
async def ready(web: Any, request: Any) -> Any:
    ok = rt.register_ready.is_set()
    return web.json({"ready": ok, "register_areas": len(rt.register),
                     "partitions": sorted(rt.assigned())}, status=200 if ok else 503)


@app.page("/areas")
async def areas_view(web: Any, request: Any) -> Any:
    return web.json({"at": format_ts(now_ms()), "areas": rt.register.snapshot(now_ms())})


@app.page("/persons/{person}")
@app.table_route(table=persons, match_info="person")
async def person_view(web: Any, request: Any, person: str) -> Any:
    state = load_state(person)
    if state is None:
        return web.json({"person": person, "found": False}, status=404)
    return web.json({"found": True, **state.to_json()})


install_observability(app)


def main() -> None:  # pragma: no cover - exercised through the CLI
    app.main()
