"""`make run`: the main job, live, in one command, with the same first screen every time.

Starts the local Kafka broker (unless one already answers) and, for each bundled
scenario in turn, a fresh namespace on it (topics, consumer group, state: nothing from an
earlier run is there), a worker on the stream clock, the scenario fed in at its own
times, and every code change, alert and dead letter printed as the worker emits it. The
stream clock makes the live worker decide exactly as `checkpoint-streams replay` does on
the same recording, so each scenario ends with one line saying whether live and replay
agree, and the run with one line saying what it did. Each namespace is deleted when its
scenario ends; Ctrl-C stops and removes everything this command started, and nothing
else.

Scenarios are not shifted to today: the policies in force are the ones of their dates
(Z22 on 2022-08-17 meets Taiyuan's 2022-03-28 rules, as in the replay), and every
scenario has its own risk-area register.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from rich.console import Console

from .admin import BrokerUnreachable, admin_client, create_topics, delete_namespace, produce_records
from .replay import Replay, read_recording
from .security import from_env
from .settings import APP_NAME
from .topics import ALERTS, CODE_CHANGES, DEAD_LETTERS

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "tests" / "scenarios"
STYLE = {"red": "bold red", "yellow": "bold yellow", "green": "bold green"}
OUTPUTS = (CODE_CHANGES, ALERTS, DEAD_LETTERS)
#: Java and Maven, for the broker's first start (Maven only fetches Kafka's jars once)
INSTALL_HINT = ("make run needs Java 17 (and Maven for the first broker start): "
                "sudo apt-get install openjdk-17-jre-headless maven")
console = Console(highlight=False)
#: a person worth looking up in each scenario (the lingering worker's hint)
LOOK_UP = {"z22": "z22-passenger-001", "pingyao": "pingyao-t1-01",
           "taiyuan-0820": "ty-tibet-traveller"}


# ------------------------------------------------------------------------ the broker
def _broker_running(env: dict[str, str]) -> bool:
    return subprocess.call(["bash", str(REPO / "deploy" / "broker.sh"), "status"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0


def _broker_cache() -> Path:
    """Where deploy/broker.sh keeps Kafka's jars (its CACHE_DIR)."""
    home = os.environ.get("HOME") or "/tmp"
    return Path(os.environ.get("CHECKPOINT_CACHE") or f"{home}/.cache/checkpoint-streams")


def _java_major() -> int | None:
    java = shutil.which("java")
    if java is None:
        return None
    shown = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    if found is None:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def check_prerequisites(cache: Path) -> str | None:
    """What is missing to start the local broker, in one line (None: nothing)."""
    major = _java_major()
    if major is None or major < 17:
        return INSTALL_HINT + (f" (found Java {major})" if major else " (no java found)")
    fetched = any(cache.glob("kafka-*/libs/.complete"))
    if not fetched and shutil.which("mvn") is None:
        return INSTALL_HINT + " (no mvn found; Kafka's jars are not fetched yet)"
    return None


# ------------------------------------------------------------------------ the screen
def _show(topic: str, value: dict[str, Any], repeats: Counter[tuple[str, str]]) -> None:
    clock = value.get("event_time", "")[:16].replace("T", " ")
    if topic == CODE_CHANGES:
        mark = " [blue]blue mark[/]" if value.get("mark") == "blue" else ""
        console.print(
            f"{clock}  [bold]{value['kind']:<10}[/] {value['person']:<24} "
            f"[{STYLE[value['from']]}]{value['from']:>6}[/] → [{STYLE[value['to']]}]{value['to']:<6}[/]"
            f"{mark}  {value['rule']}  [dim]{value['reason']['en'][:70]}[/]")
    elif topic == ALERTS:
        who = value.get("person") or value.get("subject") or ""
        repeats[(value["kind"], who)] += 1
        if repeats[(value["kind"], who)] == 1:  # the rest are summed up per person at the end
            console.print(f"{clock}  [magenta]ALERT {value['kind']:<19}[/] {who:<24} "
                          f"[dim]{value['detail']['en'][:80]}[/]")
    else:
        console.print(f"{clock}  [red]DEAD LETTER[/] {value['reason']}: {value['detail'][:80]}")


@dataclass(slots=True)
class Seen:
    """What one scenario's worker emitted, by topic (contract names)."""

    values: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {topic: [] for topic in OUTPUTS})
    repeats: Counter[tuple[str, str]] = field(default_factory=Counter)
    last: float = field(default_factory=time.monotonic)

    def count(self) -> int:
        return sum(len(v) for v in self.values.values())


def _tail(bootstrap: str, prefix: str, seen: Seen, ready: threading.Event,
          stop: threading.Event) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=300, **from_env().kafka_python())
    try:
        parts = [TopicPartition(prefix + t, p) for t in OUTPUTS
                 for p in consumer.partitions_for_topic(prefix + t) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)  # a fresh namespace: everything there is ours
        ready.set()
        while not stop.is_set():
            for message in consumer:
                topic = message.topic[len(prefix):]
                value = orjson.loads(message.value)
                seen.values[topic].append(value)
                seen.last = time.monotonic()
                _show(topic, value, seen.repeats)
                if stop.is_set():
                    break
    finally:
        ready.set()
        consumer.close()


# ------------------------------------------------------------------------ one scenario
@dataclass(slots=True)
class Outcome:
    name: str
    inputs: int
    changes: int
    alerts: int
    dead_letters: int
    agrees: bool
    differences: list[str]


def _expected(path: Path) -> tuple[list[dict[str, Any]], Replay]:
    """The scenario's records and its offline replay (what the live worker must emit)."""
    with open(path, "rb") as handle:
        records, rejected = read_recording(handle)
    run = Replay()
    run.run(records, dead_letters=rejected)
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return lines, run


def _identity(value: dict[str, Any]) -> tuple[Any, ...]:
    return (value.get("id"), value.get("kind"), value.get("person") or value.get("subject"),
            value.get("to"), value.get("rule"))


def _compare(seen: Seen, replay: Replay) -> list[str]:
    differences = []
    for topic in OUTPUTS:
        live = Counter(_identity(v) for v in seen.values[topic])
        offline = Counter(_identity(o["value"]) for o in replay.outputs if o["topic"] == topic)
        if live != offline:
            missing, extra = offline - live, live - offline
            differences.append(f"{topic}: {sum(missing.values())} missing live, "
                               f"{sum(extra.values())} not in the replay")
    return differences


@contextmanager
def _namespace(bootstrap: str, namespace: str) -> Iterator[str]:
    """A fresh namespace's topics; on leaving, its topics and consumer group are deleted."""
    prefix = namespace + "."
    create_topics(bootstrap, prefix=prefix)
    try:
        yield prefix
    finally:
        with suppress(KafkaError, BrokerUnreachable, OSError):
            delete_namespace(bootstrap, prefix)
            admin = admin_client(bootstrap)
            try:
                admin.delete_groups([f"{namespace}.{APP_NAME}"])
            finally:
                admin.close()


def _wait_ready(port: int, worker: subprocess.Popen[bytes], log: Path,
                timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise click.ClickException(f"the worker exited; see {log}")
        with suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/ready",
                                                       timeout=2) as resp:
            if resp.status == 200 and orjson.loads(resp.read()).get("partitions"):
                return
        time.sleep(0.3)
    raise click.ClickException(f"the worker did not become ready; see {log}")


def _stop(worker: subprocess.Popen[bytes] | None) -> None:
    if worker is None or worker.poll() is not None:
        return
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)


def _summarise(name: str, inputs: int, seen: Seen, replay: Replay) -> Outcome:
    for (kind, who), times in sorted(seen.repeats.items()):
        if times > 1:
            console.print(f"      [magenta]ALERT {kind:<19}[/] {who:<24} [dim]×{times} in all[/]")
    differences = _compare(seen, replay)
    outcome = Outcome(name, inputs, len(seen.values[CODE_CHANGES]), len(seen.values[ALERTS]),
                      len(seen.values[DEAD_LETTERS]), not differences, differences)
    verdict = ("[green]the same as `checkpoint-streams replay`[/]" if outcome.agrees else
               "[red]differs from the replay: " + "; ".join(differences) + "[/]")
    console.print(f"[bold]{name}[/]: {outcome.inputs} inputs -> {outcome.changes} code changes, "
                  f"{outcome.alerts} alerts, {outcome.dead_letters} dead letters; {verdict}")
    return outcome


def run_scenario(name: str, bootstrap: str, namespace: str, web_port: int,
                 settle: float = 60.0,
                 linger: Callable[[Outcome, int], None] | None = None) -> Outcome:
    """One scenario in its own namespace; `linger` (the last scenario, in a terminal) is
    called with the worker still running, which then serves look-ups until Ctrl-C."""
    path = SCENARIOS / f"{name}.jsonl"
    lines, replay = _expected(path)
    expected = len(replay.outputs)
    console.rule(f"[bold]{name}[/]: {len(lines)} records at their own times, "
                 f"namespace {namespace}")
    log = REPO / ".cache" / f"demo-worker-{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    worker: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    seen = Seen()
    with _namespace(bootstrap, namespace) as prefix:
        env = {**os.environ, "CHECKPOINT_BROKER": bootstrap, "CHECKPOINT_NAMESPACE": namespace,
               "CHECKPOINT_WEB_PORT": str(web_port), "CHECKPOINT_STORE": "memory://",
               "CHECKPOINT_CLOCK": "stream", "CHECKPOINT_COMMIT_INTERVAL": "0.5"}
        env.pop("CHECKPOINT_TOPIC_PREFIX", None)
        try:
            ready = threading.Event()
            tailer = threading.Thread(target=_tail, args=(bootstrap, prefix, seen, ready, stop),
                                      daemon=True)
            tailer.start()
            ready.wait(30)
            # the whole recording first, then the worker: on the stream clock a worker takes
            # what the broker holds in event-time order, as the replay does (records still
            # to be produced would reach it late)
            for _ in produce_records(bootstrap, lines, prefix=prefix):
                pass
            with open(log, "wb") as out:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "streams.cli", "worker", "--no-create-topics"],
                    cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True)
            _wait_ready(web_port, worker, log)
            deadline = time.monotonic() + settle
            while seen.count() < expected and time.monotonic() < deadline:
                if worker.poll() is not None:
                    raise click.ClickException(f"the worker exited; see {log}")
                time.sleep(0.2)
            time.sleep(1.0)  # anything beyond the replay's outputs would show here
            outcome = _summarise(name, len(lines), seen, replay)
            if linger is not None:
                linger(outcome, web_port)
                while worker.poll() is None:
                    time.sleep(0.5)
        finally:
            stop.set()
            _stop(worker)
    return outcome


# ------------------------------------------------------------------------ the command
def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
@click.command()
@click.option("--scenario", "scenarios", multiple=True,
              default=["taiyuan-0820", "pingyao", "z22"], show_default=True,
              help="Bundled scenario(s) under tests/scenarios to run, each on its own.")
@click.option("--port", type=int, default=9092, show_default=True, help="Local broker port.")
@click.option("--web-port", type=int, default=6066, show_default=True)
@click.option("--keep/--no-keep", default=None,
              help="Keep the last scenario's worker serving look-ups until Ctrl-C "
                   "[default: when the output is a terminal].")
def main(scenarios: tuple[str, ...], port: int, web_port: int, keep: bool | None) -> None:
    """Run the live pipeline on a local broker and watch codes change."""
    for name in scenarios:
        if not (SCENARIOS / f"{name}.jsonl").is_file():
            known = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.jsonl")))
            raise click.ClickException(f"no scenario {name!r}; bundled: {known}")
    if keep is None:
        keep = sys.stdout.isatty()
    signal.signal(signal.SIGTERM, _interrupted)  # a supervisor's stop cleans up as Ctrl-C does
    env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(port + 1)}
    bootstrap = f"127.0.0.1:{port}"
    started_broker = False
    if not _broker_running(env):
        missing = check_prerequisites(_broker_cache())
        if missing:
            raise click.ClickException(missing)
        console.print("[bold]starting the local Kafka broker[/] (the first run fetches Kafka)")
        subprocess.run(["bash", str(REPO / "deploy" / "broker.sh"), "start"], env=env, check=True)
        started_broker = True
    run_id = time.strftime("%m%d%H%M%S")
    outcomes: list[Outcome] = []
    told: list[str] = []

    def summary(removed: str = "removed") -> str:
        agree = sum(o.agrees for o in outcomes)
        plural = "" if len(outcomes) == 1 else "s"
        return (f"make run: {len(outcomes)} scenario{plural}, {sum(o.inputs for o in outcomes)} inputs "
                f"-> {sum(o.changes for o in outcomes)} code changes, "
                f"{sum(o.alerts for o in outcomes)} alerts, "
                f"{sum(o.dead_letters for o in outcomes)} dead letters; live = replay for "
                f"{agree} of {len(outcomes)}; namespaces demo-{run_id}-* {removed}")

    def linger(outcome: Outcome, port: int) -> None:
        outcomes.append(outcome)
        told.append(summary("removed (the last at Ctrl-C)"))
        console.print(told[-1])
        console.print(f"the {outcome.name} worker keeps serving on http://127.0.0.1:{port}; in "
                      f"another terminal: .venv/bin/checkpoint-streams status "
                      f"{LOOK_UP.get(outcome.name, '<person>')} --worker http://127.0.0.1:{port}"
                      f"   (Ctrl-C stops everything started here)")

    try:
        for number, name in enumerate(scenarios, start=1):
            last = number == len(scenarios) and keep
            try:
                outcome = run_scenario(name, bootstrap, f"demo-{run_id}-{name}", web_port,
                                       linger=linger if last else None)
            except BrokerUnreachable as exc:
                raise click.ClickException(str(exc)) from None
            if not last:
                outcomes.append(outcome)
    except KeyboardInterrupt:
        console.print("\nstopped; this run's namespaces are removed")
    finally:
        if started_broker:
            subprocess.run(["bash", str(REPO / "deploy" / "broker.sh"), "stop"], env=env,
                           check=False)
    if not told:
        console.print(summary() + ("; broker stopped" if started_broker
                                   else f"; broker {bootstrap} left running"))
    if sum(o.agrees for o in outcomes) != len(outcomes):
        sys.exit(1)


if __name__ == "__main__":
    main()
