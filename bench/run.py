"""The benchmark: one command, one run, everything side by side on the real local broker.

    python -m bench.run --broker 127.0.0.1:42092            # full run (~5 min here)
    python -m bench.run --broker 127.0.0.1:42092 --quick    # small run (< ~3 min)

Start a broker first (deploy/broker.sh start; KAFKA_PORT picks its port). Sections,
each in its own topic namespace (prefix) on that broker:

1. engine     the pure engine alone (no Kafka): scan decisions/s through `process`, and
              the offline replay (input gate + engine + fan-out) in records/s;
2. ceiling    a bare aiokafka consume -> orjson decode -> produce loop (bench/ceiling.py)
              over a preloaded backlog of the synthetic load;
3. pipeline   the same backlog through 1, then 2 real `checkpoint-streams worker`
              processes (CHECKPOINT_CLOCK=wall);
4. latency    1 worker fed at 25 / 50 / 80 % of the measured 1-worker scan rate, paced by
              event time: p50 / p99 / p99.9 of input event time -> output received.
              Steady arrivals only (no mid-run upgrade or exposed trip: those fan-outs
              are bursts, measured by `retro`); results are not due within such a run;
5. retro      N recent visitors of one area, then the area raised to high: time from
              sending the upgrade to receiving the last visitor's code change;
6. budget     the per-record CPU budget of one worker (bench/profile.py under py-spy):
              where its CPU goes (Faust, engine, gate, state, outputs, metrics, logs)
              draining a backlog and at a steady 50 % of the measured 1-worker rate.

Throughput is measured the same way for the ceiling and the pipeline: records in the
backlog divided by the span between the first and the last output's Kafka timestamp
(the producer's send time). Results go to bench/results/<timestamp>.json and .md; the
ratios (pipeline / ceiling, 2 workers / 1 worker) are the headline.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the integration harness (tests/) drives the real workers

from streams.admin import delete_namespace  # noqa: E402
from streams.engine.timeutil import format_ts, parse_ts  # noqa: E402
from streams.load import LoadConfig, generate, produce, upgrade, visitors  # noqa: E402
from streams.runtime.states import decode  # noqa: E402
from tests.integration.harness import CONSUMED, Namespace, Worker, free_port, last_values  # noqa: E402

RESULTS = REPO / "bench" / "results"
SCANS = ("checkpoint.scans.station", "checkpoint.scans.highway")
OUTPUTS = ("checkpoint.code-changes", "checkpoint.alerts", "checkpoint.dead-letters")


@dataclass(frozen=True)
class Plan:
    engine_scans: int
    backlog_scans: int
    latency_seconds: float
    fractions: tuple[float, ...]
    retro: tuple[int, ...]
    scale_persons: int


QUICK = Plan(engine_scans=2_000, backlog_scans=6_000, latency_seconds=8,
             fractions=(0.25, 0.5, 0.8), retro=(10_000,), scale_persons=20_000)
FULL = Plan(engine_scans=20_000, backlog_scans=40_000, latency_seconds=30,
            fractions=(0.25, 0.5, 0.8), retro=(10_000, 100_000), scale_persons=100_000)


def now_ms() -> int:
    return int(time.time() * 1000)


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1))]


# ---------------------------------------------------------------------- kafka helpers
class Probe:
    """Long-lived kafka-python clients for lag polling (cheap enough to poll each second)."""

    def __init__(self, ns: Namespace) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer

        self.ns = ns
        self.admin = KafkaAdminClient(bootstrap_servers=ns.bootstrap)
        self.consumer = KafkaConsumer(bootstrap_servers=ns.bootstrap)

    def lag(self, topics: Iterable[str] = CONSUMED) -> int:
        from kafka import TopicPartition

        parts = [TopicPartition(self.ns.topic(t), p) for t in topics
                 for p in self.consumer.partitions_for_topic(self.ns.topic(t)) or ()]
        ends = self.consumer.end_offsets(parts)
        committed = self.admin.list_group_offsets({self.ns.app_id: None}).get(self.ns.app_id, {})
        total = 0
        for tp in parts:
            done = committed.get(tp)
            total += ends[tp] - (done.offset if done is not None and done.offset >= 0 else 0)
        return int(total)

    def wait_idle(self, timeout: float, poll: float = 1.0, quiet: int = 2) -> float:
        """Until the group's lag is 0 on `quiet` polls in a row; returns the seconds waited."""
        started = time.monotonic()
        zero = 0
        while time.monotonic() - started < timeout:
            if self.lag() == 0:
                zero += 1
                if zero >= quiet:
                    return time.monotonic() - started
            else:
                zero = 0
            time.sleep(poll)
        raise TimeoutError(f"still behind after {timeout:.0f} s (lag {self.lag()})")

    def wait_stable(self, members: int, timeout: float = 120.0, quiet: int = 3) -> None:
        """Until the group is Stable with `members` members on `quiet` polls in a row
        (a worker's first topic creations can set off one more rebalance after it is ready)."""
        started = time.monotonic()
        calm = 0
        while time.monotonic() - started < timeout:
            group = self.admin.describe_groups([self.ns.app_id]).get(self.ns.app_id, {})
            stable = group.get("group_state") == "Stable" and len(group.get("members", ())) == members
            calm = calm + 1 if stable else 0
            if calm >= quiet:
                return
            time.sleep(1.0)
        raise TimeoutError(f"group {self.ns.app_id} not stable with {members} members")

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()


def drop_namespace(ns: Namespace) -> None:
    """Delete the namespace's topics (and the workers' changelogs) from our broker."""
    try:
        left = delete_namespace(ns.bootstrap, ns.prefix)
        if left:
            log(f"could not delete every topic of {ns.prefix}: {', '.join(left)}")
    except Exception as exc:  # best effort: a leftover topic costs disk, not correctness
        log(f"could not delete topics of {ns.prefix}: {exc}")


async def read_outputs(broker: str, topics: list[str], *, from_end: bool = False,
                       until: Callable[[list[tuple[str, int, int, bytes]]], bool] | None = None,
                       idle_seconds: float = 3.0, timeout: float = 600.0,
                       started: asyncio.Event | None = None) -> list[tuple[str, int, int, bytes]]:
    """(topic, kafka timestamp ms, receive time ms, value) of output messages.

    from_end=False: everything now on the topics, then stop. from_end=True: only new
    messages, until `until(messages)` holds or nothing arrives for `idle_seconds` after
    the first message (or `timeout`)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False,
                                group_id=None, fetch_max_wait_ms=50)
    await consumer.start()
    out: list[tuple[str, int, int, bytes]] = []
    try:
        parts = [TopicPartition(t, p) for t in topics
                 for p in sorted(consumer.partitions_for_topic(t)
                                 or await _partitions(consumer, t))]
        consumer.assign(parts)
        if from_end:
            await consumer.seek_to_end(*parts)
            for tp in parts:
                await consumer.position(tp)
            end = None
        else:
            await consumer.seek_to_beginning(*parts)
            end = await consumer.end_offsets(parts)
        if started is not None:
            started.set()
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline:
            if end is not None and all([await consumer.position(tp) >= end[tp] for tp in parts]):
                break
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            received = now_ms()
            for tp, messages in batch.items():
                out.extend((tp.topic, m.timestamp, received, m.value) for m in messages)
            if batch:
                last = time.monotonic()
                if until is not None and until(out):
                    break
            elif from_end and out and time.monotonic() - last > idle_seconds:
                break
    finally:
        await consumer.stop()
    return out


async def _partitions(consumer: Any, topic: str) -> set[int]:
    cluster = await consumer._client.fetch_all_metadata()
    return set(cluster.partitions_for_topic(topic) or ())


def preload(ns: Namespace, records: list[dict[str, Any]]) -> float:
    started = time.monotonic()
    asyncio.run(produce(records, ns.bootstrap, prefix=ns.prefix))
    return time.monotonic() - started


# -------------------------------------------------------------------------- sections
def section_engine(plan: Plan, seed: int) -> dict[str, Any]:
    """The pure engine (process() per scan) and the whole offline replay, no Kafka."""
    from streams import codec
    from streams.collector import collecting_rarely
    from streams.engine import SCAN, Context, Register, load_policy_dir, process
    from streams.replay import Replay, read_recording

    records = list(generate(LoadConfig(seed=seed, scans=plan.engine_scans, end=now_ms())))
    policies = load_policy_dir()
    register = Register()
    scans = []
    for record in records:
        if record["topic"] == "checkpoint.risk-areas":
            register.apply_update(record["value"])
        elif record["topic"] in SCANS:
            scans.append(record["value"])
    states: dict[str, Any] = {}
    started = time.perf_counter()
    with collecting_rarely():  # as a worker and the replay do (streams.collector)
        for value in scans:
            person = value["person"]
            outcome = process(states.get(person), person, SCAN, value,
                              Context(register, policies, parse_ts(value["event_time"])))
            states[person] = outcome.state
    engine_seconds = time.perf_counter() - started

    limits = codec.Limits(None, None)
    raws = [(record["topic"], orjson.dumps(record["value"])) for record in records]
    started = time.perf_counter()
    for topic, raw in raws:
        codec.decode(topic, raw, 0, limits)  # the worker's input gate, bytes to value
    check_seconds = time.perf_counter() - started

    parsed, dead = read_recording(orjson.dumps(r) for r in records)
    replay = Replay(policies)
    decisions = 0
    decide = replay._decide

    def counted(*args: Any) -> Any:
        nonlocal decisions
        decisions += 1
        return decide(*args)

    replay._decide = counted  # type: ignore[method-assign,assignment]
    started = time.perf_counter()
    replay.run(parsed)
    replay_seconds = time.perf_counter() - started
    return {
        "scans": len(scans), "records": len(records), "dead_letters": len(dead),
        "engine_scan_decisions_per_second": len(scans) / engine_seconds,
        "check_records_per_second": len(records) / check_seconds,
        "replay_records_per_second": len(records) / replay_seconds,
        "replay_decisions_per_second": decisions / replay_seconds,
        "replay_decisions": decisions,
    }


def _throughput(ns: Namespace, records: list[dict[str, Any]]) -> dict[str, Any]:
    outputs = asyncio.run(read_outputs(ns.bootstrap, [ns.topic(t) for t in OUTPUTS]))
    stamps = [stamp for _, stamp, _, _ in outputs]
    first, last = min(stamps), max(stamps)
    seconds = max((last - first) / 1000, 1e-3)
    scans = sum(r["topic"] in SCANS for r in records)
    by_topic: dict[str, int] = {}
    for topic, *_ in outputs:
        name = topic[len(ns.prefix):]
        by_topic[name] = by_topic.get(name, 0) + 1
    return {"records": len(records), "scans": scans, "seconds": seconds,
            "records_per_second": len(records) / seconds, "scans_per_second": scans / seconds,
            "outputs": by_topic}


def _bare_process(broker: str, records: list[dict[str, Any]], module: str, *extra: str,
                  timed_by_outputs: bool = False) -> dict[str, Any]:
    """Preload the backlog in a fresh namespace, run `python -m module` over it (a bare
    loop that prints one JSON line of its own measures when it has seen every record).
    `timed_by_outputs`: throughput from its outputs' timestamps, as for the pipeline."""
    ns = Namespace(broker)
    try:
        preload(ns, records)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", module, "--broker", broker, "--prefix", ns.prefix,
             "--group", ns.app_id, "--expect", str(len(records)), *extra],
            cwd=REPO, capture_output=True, check=True, timeout=1800)
        lines = [line for line in done.stdout.splitlines() if line.startswith(b"{")]
        inside: dict[str, Any] = orjson.loads(lines[-1])
        inside["wall_seconds"] = time.monotonic() - started
        inside["cpu_us_per_record"] = inside["cpu_seconds"] / len(records) * 1e6
        if timed_by_outputs:
            inside = {**_throughput(ns, records), "cpu_seconds": inside["cpu_seconds"],
                      "cpu_us_per_record": inside["cpu_us_per_record"],
                      "wall_seconds": inside["wall_seconds"],
                      "self_measured_records_per_second": inside["records_per_second"]}
        return inside
    finally:
        drop_namespace(ns)


def section_ceiling(broker: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    return _bare_process(broker, records, "bench.ceiling", timed_by_outputs=True)


def section_floor(broker: str, records: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    """The Faust floor (bench/faust_floor.py): bare agents, same topics and backlog."""
    result = _bare_process(broker, records, "bench.faust_floor", "--mode", mode,
                           "--web-port", str(free_port()))
    result["mode"] = mode
    return result


def section_pipeline(broker: str, records: list[dict[str, Any]], workers: int,
                     log_dir: Path, clock: str = "wall",
                     seen: dict[str, Any] | None = None) -> dict[str, Any]:
    """The backlog through `workers` real workers. Wall clock: workers first, joined and
    idle, then the backlog as fast as the producer goes (no rebalance in the measured
    span). Stream clock: the backlog first, then the workers, which take what the broker
    holds in event-time order (as a replay does). `seen` receives the run's output ids
    and every person's final code and controls, for `equivalence`."""
    ns = Namespace(broker)
    started: list[Worker] = []
    probe = Probe(ns)
    try:
        if clock == "stream":
            preload(ns, records)
        for index in range(workers):
            started.append(Worker(ns, log_dir, clock=clock,
                                  name=f"p{workers}-{clock}-{index}").start(wait=False))
        for worker in started:
            worker.wait_ready()
        probe.wait_stable(workers)
        assignments = sum(_assignments(w) for w in started)
        cpu_before = sum(_cpu_seconds(w) for w in started)
        if clock == "wall":
            preload(ns, records)
        probe.wait_idle(timeout=max(300.0, len(records) / 50))
        cpu = sum(_cpu_seconds(w) for w in started) - cpu_before
        result = _throughput(ns, records)
        result["workers"] = workers
        result["clock"] = clock
        result["rebalances_during_run"] = sum(_assignments(w) for w in started) - assignments
        # CPU time is what a shared machine does not distort much: compare it per record
        # (on the stream clock it includes the start: the backlog waits for the workers)
        result["cpu_seconds"] = cpu
        result["cpu_us_per_record"] = cpu / len(records) * 1e6
        if seen is not None:
            seen.update(_outcome(ns))
            result["persons_final"] = len(seen["final"])
            result["output_ids"] = len(seen["ids"])
        return result
    finally:
        probe.close()
        for worker in started:
            worker.stop()
        drop_namespace(ns)


def _outcome(ns: Namespace) -> dict[str, Any]:
    """What a run leaves: the ids of its code changes and alerts, and every person's
    final code and active controls (the persons changelog, last record per key)."""
    outputs = asyncio.run(read_outputs(ns.bootstrap, [ns.topic(t) for t in OUTPUTS[:2]]))
    ids = sorted(orjson.loads(value)["id"] for *_, value in outputs)
    rows = last_values(ns.bootstrap, f"{ns.app_id}-persons-changelog")
    final = {}
    for key, value in rows.items():
        if value is None or key is None or key.startswith(b"\x00"):
            continue
        state = decode(value)
        final[state.person] = (state.colour, tuple(sorted(c.rule for c in state.controls)),
                               tuple(sorted(c.id for c in state.controls)))
    return {"ids": ids, "final": final}


def equivalence(one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    """One worker against two: persons whose final code or controls differ, and outputs
    (by id) only one of the runs emitted."""
    persons = set(one["final"]) | set(two["final"])
    differing = sorted(p for p in persons if one["final"].get(p) != two["final"].get(p))
    # the code and the rules of the active controls; their ids also name when they began
    codes = sorted(p for p in persons
                   if (one["final"].get(p) or ())[:2] != (two["final"].get(p) or ())[:2])
    only_one, only_two = set(one["ids"]) - set(two["ids"]), set(two["ids"]) - set(one["ids"])
    return {"persons": len(persons), "persons_differing": len(differing),
            "persons_differing_in_code_or_rules": len(codes), "code_examples": codes[:5],
            "examples": differing[:5], "outputs_one": len(one["ids"]),
            "outputs_two": len(two["ids"]), "outputs_only_one": len(only_one),
            "outputs_only_two": len(only_two),
            "same_final_states": not differing,
            "identical_outputs": not only_one and not only_two}


def _assignments(worker: Worker) -> int:
    """How many partition assignments the worker has logged (one per rebalance)."""
    return worker.log_path.read_text(errors="replace").count("Setting newly assigned partitions")


def _cpu_seconds(worker: Worker) -> float:
    """User + system CPU seconds of a worker process so far (Linux /proc)."""
    assert worker.process is not None
    fields = Path(f"/proc/{worker.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _latencies(messages: list[tuple[str, int, int, bytes]], since: int) -> dict[str, Any]:
    e2e: list[float] = []
    worker: list[float] = []
    for topic, _, received, raw in messages:
        if topic.endswith("dead-letters"):
            continue
        value = orjson.loads(raw)
        event = parse_ts(value["event_time"])
        if event < since:
            continue
        e2e.append(received - event)
        worker.append(parse_ts(value["emitted_at"]) - event)
    return {
        "outputs": len(e2e),
        "p50_ms": percentile(e2e, 0.50), "p99_ms": percentile(e2e, 0.99),
        "p999_ms": percentile(e2e, 0.999), "max_ms": max(e2e, default=None),
        "worker_p50_ms": percentile(worker, 0.50), "worker_p99_ms": percentile(worker, 0.99),
        "worker_p999_ms": percentile(worker, 0.999),
    }


def paced_producer(ns: Namespace, seed: int, scans: int, rate: float, *extra: str) -> list[str]:
    """The command of a producer process sending `scans` scans at `rate` a second, at their
    event times, with no raises or exposed trips (`checkpoint-streams load --rate`)."""
    return [sys.executable, "-m", "streams.load", "--seed", str(seed), "--scans", str(scans),
            "--rate", f"{rate:.3f}", "--broker", ns.bootstrap, "--namespace", ns.namespace,
            "--upgrades", "0", "--exposed-trips", "0", "--no-progress", *extra]


async def _paced_run(ns: Namespace, seed: int, rate: float, seconds: float) -> dict[str, Any]:
    """A producer process sending `rate` scans/s by event time; outputs timed on arrival."""
    scans = max(int(rate * seconds), 1)
    begin = now_ms() + 4000  # the producer process needs a moment to import
    end = begin + int(scans / rate * 1000)
    ready = asyncio.Event()
    reader = asyncio.create_task(read_outputs(
        ns.bootstrap, [ns.topic(t) for t in OUTPUTS], from_end=True, idle_seconds=4.0,
        timeout=seconds + 300, started=ready))
    await ready.wait()
    process = await asyncio.create_subprocess_exec(
        *paced_producer(ns, seed, scans, rate, "--end", format_ts(end)), cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate()
    finished = now_ms()
    if process.returncode:
        reader.cancel()
        raise RuntimeError(f"producer failed: {err.decode()[-2000:]}")
    messages = await reader
    result = _latencies(messages, begin - 1000)
    result.update({"rate_scans_per_second": rate, "scans": scans,
                   "producer_late_ms": max(finished - end, 0)})
    return result


def section_latency(broker: str, plan: Plan, max_rate: float, log_dir: Path,
                    seed: int) -> dict[str, Any]:
    ns = Namespace(broker)
    worker = Worker(ns, log_dir, clock="wall", name="lat")
    probe = Probe(ns)
    try:
        worker.start()
        runs = []
        for step, fraction in enumerate(plan.fractions):
            rate = max_rate * fraction
            log(f"latency at {fraction:.0%} of max: {rate:.0f} scans/s for {plan.latency_seconds:.0f} s")
            run = asyncio.run(_paced_run(ns, seed + 100 + step, rate, plan.latency_seconds))
            run["fraction"] = fraction
            runs.append(run)
            probe.wait_idle(timeout=300)
        return {"max_scans_per_second": max_rate, "runs": runs}
    finally:
        probe.close()
        worker.stop()
        drop_namespace(ns)


async def raise_and_wait(ns: Namespace, area: str, count: int, update_id: str,
                          timeout: float) -> dict[str, Any]:
    wanted = update_id.encode()

    def complete(messages: list[tuple[str, int, int, bytes]]) -> bool:
        return sum(wanted in raw for _, _, _, raw in messages) >= count

    ready = asyncio.Event()
    reader = asyncio.create_task(read_outputs(
        ns.bootstrap, [ns.topic("checkpoint.code-changes")], from_end=True, until=complete,
        idle_seconds=timeout, timeout=timeout, started=ready))
    await ready.wait()
    sent_at = now_ms()
    await produce([upgrade(area, "high", sent_at, effective=sent_at - 3_600_000,
                           update_id=update_id)], ns.bootstrap, prefix=ns.prefix)
    messages = await reader
    hits = [(received, orjson.loads(raw)) for _, _, received, raw in messages if wanted in raw]
    people = {value["person"] for _, value in hits}
    last = max((received for received, _ in hits), default=sent_at)
    return {"visitors": count, "reevaluated": len(people), "complete": len(people) >= count,
            "seconds": (last - sent_at) / 1000,
            "worker_seconds": max((parse_ts(v["emitted_at"]) - sent_at for _, v in hits),
                                  default=0) / 1000,
            "persons_per_second": len(people) / max((last - sent_at) / 1000, 1e-3)}


def _rss_mb(worker: Worker) -> float:
    """Resident memory of a worker process now (Linux /proc), MB."""
    assert worker.process is not None
    status = Path(f"/proc/{worker.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def section_soak(broker: str, minutes: float, rate: float, warm_scans: int, log_dir: Path,
                 seed: int, every: float = 10.0) -> dict[str, Any]:
    """One worker (RocksDB store, wall clock) warmed up with `warm_scans` scans, then a
    paced producer sending `rate` scans/s for `minutes`, by the warm-up's persons only (no
    new persons: what grows is what leaks). Every `every` seconds: RSS, CPU per scan over
    the interval, and the group's lag."""
    ns = Namespace(broker)
    worker = Worker(ns, log_dir, clock="wall", name="soak",
                    env={"CHECKPOINT_STORE": "rocksdb://"})
    probe = Probe(ns)
    try:
        worker.start()
        warm = list(generate(LoadConfig(seed=seed, scans=warm_scans, end=now_ms(), upgrades=0,
                                        exposed_trips=0)))
        persons = len({r["value"]["person"] for r in warm if r["topic"] in SCANS})
        preload(ns, warm)
        probe.wait_idle(timeout=max(300.0, warm_scans / 50))
        log(f"soak: warmed up with {persons:,} persons; {rate:,.0f} scans/s for {minutes:g} min")
        scans = max(int(rate * minutes * 60), 1)
        producer = subprocess.Popen(
            paced_producer(ns, seed + 1, scans, rate, "--population", str(persons),
                           "--population-seed", str(seed), "--no-create-topics"),
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples = []
        began = time.monotonic()
        cpu_before, at_before = _cpu_seconds(worker), began
        while producer.poll() is None:
            time.sleep(every)
            cpu, at = _cpu_seconds(worker), time.monotonic()
            samples.append({"t": round(at - began, 1), "rss_mb": round(_rss_mb(worker), 1),
                            "cpu_us_per_scan": round((cpu - cpu_before) / (rate * (at - at_before))
                                                     * 1e6),
                            "lag": probe.lag()})
            cpu_before, at_before = cpu, at
        if producer.returncode:
            raise RuntimeError(f"producer failed: {producer.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            drained: float | None = probe.wait_idle(timeout=300)
        except TimeoutError:  # behind for good: what the samples show is the result
            drained = None
        lag_end = probe.lag()
    finally:
        probe.close()
        worker.stop()
        drop_namespace(ns)
    # the first half fills what is bounded (the decoded-state cache, RocksDB's memtables and
    # block cache up to their budget); what still grows in the second half grows for ever
    half = [s for s in samples if s["t"] >= samples[-1]["t"] / 2] or samples
    first, last = half[0]["rss_mb"], samples[-1]["rss_mb"]
    cpus = sorted(s["cpu_us_per_scan"] for s in samples[1:-1] or samples)
    return {
        "minutes": minutes, "rate_scans_per_second": rate, "persons": persons, "scans": scans,
        "rss_mb_half_time": first, "rss_mb_end": last,
        "rss_growth": (last - first) / first if first else None,
        "rss_mb_max": max(s["rss_mb"] for s in samples),
        "cpu_us_per_scan_median": cpus[len(cpus) // 2], "cpu_us_per_scan_max": cpus[-1],
        "lag_max": max(s["lag"] for s in samples), "lag_end": lag_end,
        "drain_seconds_after": None if drained is None else round(drained, 1),
        "samples": samples,
    }


def section_retro(broker: str, sizes: tuple[int, ...], log_dir: Path, seed: int) -> dict[str, Any]:
    ns = Namespace(broker)
    worker = Worker(ns, log_dir, clock="wall", name="retro")
    probe = Probe(ns)
    areas = ["610113", "130102", "410102", "150102"]  # Xi'an, Shijiazhuang, Zhengzhou, Hohhot
    runs = []
    try:
        worker.start()
        for size, area in zip(sizes, areas, strict=False):
            log(f"retro: {size} visitors of {area}")
            load_started = time.monotonic()
            preload(ns, list(visitors(size, area, seed=seed, end=now_ms())))
            probe.wait_idle(timeout=max(300.0, size / 100))
            loaded = time.monotonic() - load_started
            log(f"retro: visitors in after {loaded:.0f} s; raising {area}")
            run = asyncio.run(raise_and_wait(ns, area, size, f"bench-up-{area}-{size}",
                                              timeout=max(120.0, size / 200)))
            run.update({"area": area, "visitors_load_seconds": loaded})
            runs.append(run)
        return {"runs": runs}
    finally:
        probe.close()
        worker.stop()
        drop_namespace(ns)


# ---------------------------------------------------------------------------- report
def section_budget(broker: str, plan: Plan, max_rate: float | None, seed: int) -> dict[str, Any]:
    """The worker's CPU split by category, at backlog and (given the 1-worker scan rate) at
    half of it. Profiled runs are separate from the timed ones: py-spy's sampling costs
    the worker a little CPU, which would skew the throughput rows."""
    from bench.profile import profile  # imports the test harness, only when asked

    scans = min(plan.backlog_scans, 8_000)
    runs = {"backlog": profile(broker, scans=scans, seed=seed,
                               out=Path(tempfile.mkstemp(prefix="cs-budget-", suffix=".txt")[1]))}
    if max_rate:
        rate = max_rate / 2
        runs["half_rate"] = profile(
            broker, scans=max(500, int(rate * plan.latency_seconds * 2)), seed=seed + 1,
            rate=rate, out=Path(tempfile.mkstemp(prefix="cs-budget-", suffix=".txt")[1]))
    for run in runs.values():
        run["us_by_category"] = {name: round(share * run["cpu_us_each"], 1)
                                 for name, share in run["shares"].items()}
    return runs


def _fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    s = result["sections"]
    rows = [("measure", "result", "context")]
    ceiling = s.get("ceiling", {})
    one = s.get("pipeline_1", {})
    two = s.get("pipeline_2", {})
    ratio = result.get("ratios", {})
    if ceiling.get("records_per_second"):
        rows.append(("ceiling: bare aiokafka consume → orjson → produce",
                     f"{_fmt(ceiling['records_per_second'])} rec/s",
                     f"{ceiling['records']:,} records; "
                     f"{_fmt(ceiling.get('cpu_us_per_record'))} µs CPU/record"))
    for name, label in (("floor_consume", "Faust floor: bare agents, decode only"),
                        ("floor_table", "Faust floor: + 1 send + 1 table write per record")):
        floor = s.get(name, {})
        if floor.get("records_per_second"):
            share = ratio.get(f"{name}_over_ceiling")
            rows.append((label, f"{_fmt(floor['records_per_second'])} rec/s",
                         (f"{share:.0%} of the ceiling; " if share else "")
                         + f"{_fmt(floor.get('cpu_us_per_record'))} µs CPU/record"))
    for label, run in (("pipeline, 1 worker", one), ("pipeline, 2 workers", two),
                       ("pipeline, 1 worker, stream clock", s.get("pipeline_1_stream", {})),
                       ("pipeline, 2 workers, stream clock", s.get("pipeline_2_stream", {}))):
        if run.get("records_per_second"):
            load = run.get("load_1min", ["?", "?"])
            rows.append((label, f"{_fmt(run['records_per_second'])} rec/s "
                         f"({_fmt(run['scans_per_second'])} scans/s)",
                         f"{run['records']:,} records, {sum(run['outputs'].values()):,} outputs; "
                         f"{_fmt(run.get('cpu_us_per_record'))} µs CPU/record; load {load[0]}→{load[1]}"))
    if "pipeline_over_ceiling" in ratio:
        rows.append(("**1 worker / ceiling**", f"**{ratio['pipeline_over_ceiling']:.0%}**",
                     "target ≥ 60%"))
    if "pipeline_over_floor" in ratio:
        rows.append(("**1 worker / Faust floor (send + table)**",
                     f"**{ratio['pipeline_over_floor']:.0%}**",
                     "what the engine, the gate and the bookkeeping leave of Faust's own limit"))
    if "ceiling_cpu_over_pipeline_cpu" in ratio:
        rows.append(("**CPU per record: ceiling / 1 worker**",
                     f"**{ratio['ceiling_cpu_over_pipeline_cpu']:.0%}**",
                     "the same ratio in CPU time, less distorted by other load"))
    budget = result.get("cpu_budget_us_per_record")
    if budget:
        rows.append(("**1 worker CPU / (Faust floor + offline replay)**",
                     f"**{ratio['pipeline_cpu_over_floor_plus_replay']:.2f}×**",
                     f"{_fmt(budget['pipeline'])} µs against {_fmt(budget['floor_table'])} + "
                     f"{_fmt(budget['replay'])} µs; target ≤ 1"))
    for clock, same in result.get("equivalence", {}).items():
        rows.append((f"1 vs 2 workers, {clock} clock",
                     ("same final states" if same["same_final_states"] else
                      f"{same['persons_differing']:,} persons' states differ "
                      f"({same['persons_differing_in_code_or_rules']:,} in code or control rules)")
                     + ("; identical outputs" if same["identical_outputs"] else
                        f"; outputs only in 1: {same['outputs_only_one']:,}, only in 2: "
                        f"{same['outputs_only_two']:,}"),
                     f"{same['persons']:,} persons; {same['outputs_one']:,} / "
                     f"{same['outputs_two']:,} outputs (code changes and alerts, by id)"))
    if "two_over_one" in ratio:
        rows.append(("**2 workers / 1 worker**", f"**{ratio['two_over_one']:.2f}×**",
                     "2 cores shared with the broker"))
    for run in s.get("latency", {}).get("runs", []):
        rate = _fmt(run["rate_scans_per_second"])
        rows.append((f"latency at {run['fraction']:.0%} of max ({rate} scans/s)",
                     f"p50 {_fmt(run['p50_ms'])} / p99 {_fmt(run['p99_ms'])} / "
                     f"p99.9 {_fmt(run['p999_ms'])} ms",
                     f"{run['outputs']:,} outputs; in-worker p99 {_fmt(run['worker_p99_ms'])} ms"))
    soak = s.get("soak")
    if soak:
        growth = soak["rss_growth"]
        rows.append((f"soak, {soak['minutes']:g} min at {soak['rate_scans_per_second']:,.0f} scans/s",
                     f"RSS {soak['rss_mb_half_time']:,.0f} → {soak['rss_mb_end']:,.0f} MB "
                     f"({growth:+.1%} over the second half); CPU {soak['cpu_us_per_scan_median']:,} "
                     f"µs/scan (median of {len(soak['samples'])} samples, max "
                     f"{soak['cpu_us_per_scan_max']:,}); lag max {soak['lag_max']:,}",
                     f"{soak['persons']:,} persons warmed up, none new; RocksDB store; target: "
                     "RSS growth < 2 %, lag bounded"))
    scale = s.get("scale")
    if scale:
        rows.append((f"takeover, empty disk, {scale['persons']:,} persons",
                     f"{scale['takeover_seconds']:.1f} s to ready",
                     f"{_fmt(scale['restore_records_per_second'])} rows/s restored from the "
                     "changelog; target for 1M persons: < 60 s"))
        rows.append((f"restart, same disk, {scale['persons']:,} persons",
                     f"{scale['restart_seconds']:.1f} s (SIGTERM) / "
                     f"{scale['kill9_restart_seconds']:.1f} s (kill -9)",
                     "to ready; target for 1M persons: < 20 s"))
        rows.append(("person state (changelog record)",
                     f"{scale['record_bytes_mean']:,} B mean, p99 {scale['record_bytes_p99']:,} B",
                     f"{scale['disk_bytes_per_person']:,} B a person on disk (RocksDB); "
                     "target ≤ 500 B"))
        rows.append(("worker RSS per million persons",
                     f"{_fmt(scale['rss_mb_per_million_persons'])} MB",
                     f"above an idle worker's {_fmt(scale['rss_mb_idle'])} MB, after the "
                     f"takeover ({_fmt(scale['rss_mb'])} MB; "
                     f"{_fmt(scale['rss_mb_after_restart'])} MB after a restart); "
                     "target < 1 GiB"))
    for run in s.get("retro", {}).get("runs", []):
        rows.append((f"retroactive upgrade, {run['visitors']:,} visitors",
                     f"{run['seconds']:.1f} s" + ("" if run["complete"] else " (incomplete)"),
                     f"{run['reevaluated']:,} re-evaluated, {_fmt(run['persons_per_second'])}/s"))
    for name, run in s.get("budget", {}).items():
        if not isinstance(run, dict) or "us_by_category" not in run:
            continue
        top = sorted(run["us_by_category"].items(), key=lambda item: -item[1])
        rows.append((f"CPU budget per record, {'backlog' if name == 'backlog' else '50 % of max'}",
                     f"{_fmt(run['cpu_us_each'])} µs",
                     "; ".join(f"{category} {us:,.0f}" for category, us in top if us >= 1)
                     + f" (µs; {run['done']:,} {run['what']}, py-spy sampling included)"))
    engine = s.get("engine", {})
    if engine.get("engine_scan_decisions_per_second"):
        rows.append(("pure engine (process per scan)",
                     f"{_fmt(engine['engine_scan_decisions_per_second'])} decisions/s",
                     f"{engine['scans']:,} scans, no Kafka"))
        rows.append(("offline replay (gate + engine + fan-out)",
                     f"{_fmt(engine['replay_records_per_second'])} rec/s",
                     f"{_fmt(engine['replay_decisions_per_second'])} decisions/s; "
                     f"gate alone {_fmt(engine['check_records_per_second'])} rec/s"))
    for name, error in result.get("errors", {}).items():
        rows.append((f"{name}: failed", error.splitlines()[-1][:120], ""))
    lines = [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines.insert(1, "|---|---|---|")
    head = (f"Benchmark {result['started']} ({'quick' if result['quick'] else 'full'}), "
            f"{result['machine']['cpus']} CPUs, load {result['machine']['load_before']}, "
            f"commit {result['machine']['commit']}")
    return head + "\n\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="checkpoint-streams benchmark (one run, side by side)")
    parser.add_argument("--broker", default=os.environ.get("CHECKPOINT_BROKER", "127.0.0.1:9092"))
    parser.add_argument("--quick", action="store_true", help="small sizes, under ~3 minutes")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--only", nargs="*",
                        choices=["engine", "ceiling", "floor", "pipeline", "latency", "retro",
                                 "budget", "scale", "soak"],
                        help="run only these sections (latency needs pipeline's max rate or --max-rate)")
    parser.add_argument("--max-rate", type=float, help="scans/s to base the latency rates on")
    parser.add_argument("--scans", type=int, help="backlog size for ceiling/pipeline (overrides the plan)")
    parser.add_argument("--retro", type=int, nargs="*", help="visitor counts for the retro section")
    parser.add_argument("--scale-persons", type=int, metavar="N",
                        help="persons in the scale section's table (the plan's by default)")
    parser.add_argument("--soak", type=float, metavar="MINUTES",
                        help="also run the soak section: one worker at a steady rate this long")
    parser.add_argument("--soak-rate", type=float, metavar="SCANS_PER_S",
                        help="the soak's rate (default: half the measured 1-worker rate, or 500)")
    parser.add_argument("--soak-persons", type=int, default=20_000,
                        help="scans of the soak's warm-up (its persons come back, nobody new)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.scans:
        plan = Plan(**{**asdict(plan), "backlog_scans": args.scans})
    if args.retro is not None:
        plan = Plan(**{**asdict(plan), "retro": tuple(args.retro)})
    if args.scale_persons:
        plan = Plan(**{**asdict(plan), "scale_persons": args.scale_persons})
    only = set(args.only or ["engine", "ceiling", "floor", "pipeline", "latency", "retro",
                             "budget", "scale"])

    try:
        from streams.admin import admin_client

        admin_client(args.broker, timeout=5).close()
    except Exception:
        log(f"no Kafka broker at {args.broker}: start one, e.g. "
            "KAFKA_PORT=42092 KAFKA_CONTROLLER_PORT=42093 bash deploy/broker.sh start")
        return 1

    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    result: dict[str, Any] = {
        "started": stamp, "quick": args.quick, "plan": asdict(plan), "broker": args.broker,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                    "commit": commit + ("+dirty" if subprocess.run(
                        ["git", "diff", "--quiet", "HEAD", "--", "streams"], cwd=REPO).returncode else "")},
        "sections": {}, "errors": {},
    }
    log_dir = Path(tempfile.mkdtemp(prefix="cs-bench-"))
    log(f"worker logs in {log_dir}")
    sections = result["sections"]
    began = time.monotonic()

    def attempt(name: str, run: Callable[[], dict[str, Any]]) -> None:
        log(f"{name} ...")
        t0 = time.monotonic()
        load_before = os.getloadavg()[0]
        try:
            sections[name] = run()
            sections[name]["section_seconds"] = round(time.monotonic() - t0, 1)
            # the machine is shared: how busy it was, to judge a number that looks off
            sections[name]["load_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
            log(f"{name}: done in {time.monotonic() - t0:.0f} s")
        except Exception:
            result["errors"][name] = traceback.format_exc()
            log(f"{name} failed:\n{result['errors'][name]}")

    if "engine" in only:
        attempt("engine", lambda: section_engine(plan, args.seed))
    backlog: list[dict[str, Any]] = []
    if only & {"ceiling", "floor", "pipeline"}:
        # ending an hour ago: on the wall clock no input of the backlog lies in the future
        # while one run or the next decides it (such an input is decided as of now, which
        # moves between runs; the stream clock has no such difference)
        backlog = list(generate(LoadConfig(seed=args.seed, scans=plan.backlog_scans,
                                           end=now_ms() - 3_600_000)))
        log(f"backlog: {len(backlog):,} records ({plan.backlog_scans:,} scans)")
    if "ceiling" in only:
        attempt("ceiling", lambda: section_ceiling(args.broker, backlog))
    if "floor" in only:
        attempt("floor_consume", lambda: section_floor(args.broker, backlog, "consume"))
        attempt("floor_table", lambda: section_floor(args.broker, backlog, "table"))
    if "pipeline" in only:
        runs: dict[str, dict[str, Any]] = {name: {} for name in
                                           ("wall_1", "wall_2", "stream_1", "stream_2")}
        attempt("pipeline_1", lambda: section_pipeline(args.broker, backlog, 1, log_dir,
                                                       seen=runs["wall_1"]))
        attempt("pipeline_2", lambda: section_pipeline(args.broker, backlog, 2, log_dir,
                                                       seen=runs["wall_2"]))
        attempt("pipeline_1_stream", lambda: section_pipeline(
            args.broker, backlog, 1, log_dir, clock="stream", seen=runs["stream_1"]))
        attempt("pipeline_2_stream", lambda: section_pipeline(
            args.broker, backlog, 2, log_dir, clock="stream", seen=runs["stream_2"]))
        for clock in ("wall", "stream"):
            if runs[f"{clock}_1"] and runs[f"{clock}_2"]:
                result.setdefault("equivalence", {})[clock] = equivalence(
                    runs[f"{clock}_1"], runs[f"{clock}_2"])
    ratios = result.setdefault("ratios", {})
    one = sections.get("pipeline_1", {}).get("records_per_second")
    if one and sections.get("ceiling", {}).get("records_per_second"):
        ratios["pipeline_over_ceiling"] = one / sections["ceiling"]["records_per_second"]
    if one and sections.get("pipeline_2", {}).get("records_per_second"):
        ratios["two_over_one"] = sections["pipeline_2"]["records_per_second"] / one
    ceiling_rate = sections.get("ceiling", {}).get("records_per_second")
    for name in ("floor_consume", "floor_table"):
        rate = sections.get(name, {}).get("records_per_second")
        if rate and ceiling_rate:
            ratios[f"{name}_over_ceiling"] = rate / ceiling_rate
    floor_rate = sections.get("floor_table", {}).get("records_per_second")
    if one and floor_rate:
        ratios["pipeline_over_floor"] = one / floor_rate
    cpu_one = sections.get("pipeline_1", {}).get("cpu_us_per_record")
    cpu_ceiling = sections.get("ceiling", {}).get("cpu_us_per_record")
    cpu_floor = sections.get("floor_table", {}).get("cpu_us_per_record")
    replay_rate = sections.get("engine", {}).get("replay_records_per_second")
    if cpu_one and cpu_floor and replay_rate:
        # the budget of issue 14: a worker costs at most the Faust floor plus the replay
        budget = cpu_floor + 1e6 / replay_rate
        ratios["pipeline_cpu_over_floor_plus_replay"] = cpu_one / budget
        result["cpu_budget_us_per_record"] = {"pipeline": cpu_one, "floor_table": cpu_floor,
                                              "replay": 1e6 / replay_rate, "budget": budget}
    if cpu_one and cpu_ceiling:
        ratios["ceiling_cpu_over_pipeline_cpu"] = cpu_ceiling / cpu_one
    if "latency" in only:
        max_rate = args.max_rate or sections.get("pipeline_1", {}).get("scans_per_second")
        if max_rate:
            attempt("latency", lambda: section_latency(args.broker, plan, max_rate, log_dir,
                                                       args.seed))
        else:
            result["errors"]["latency"] = "no max rate: run the pipeline section or pass --max-rate"
    if "retro" in only and plan.retro:
        attempt("retro", lambda: section_retro(args.broker, plan.retro, log_dir, args.seed))
    if "budget" in only:
        attempt("budget", lambda: section_budget(
            args.broker, plan, args.max_rate or sections.get("pipeline_1", {}).get("scans_per_second"),
            args.seed))
    if "scale" in only:
        from bench.scale import section_scale  # imports the test harness, only when asked

        attempt("scale", lambda: section_scale(args.broker, plan.scale_persons, log_dir,
                                               args.seed))
    if args.soak:
        soak_rate = args.soak_rate or (
            sections.get("pipeline_1", {}).get("scans_per_second", 1000.0) / 2)
        attempt("soak", lambda: section_soak(args.broker, args.soak, soak_rate, args.soak_persons,
                                             log_dir, args.seed))
    result["seconds"] = round(time.monotonic() - began, 1)

    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(result)
    (args.out / f"{stamp}.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    (args.out / f"{stamp}.md").write_text(table, encoding="utf-8")
    sys.stdout.write(table)
    log(f"wrote {args.out / stamp}.json and .md in {result['seconds']:.0f} s")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
