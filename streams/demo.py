"""`make run`: the main job, live, in one command.

Starts the local Kafka broker (unless one already answers), creates the topics, starts a
worker with the in-memory table store, feeds bundled scenarios (shifted to the present)
and prints every code change and alert as the worker emits it. Ctrl-C stops everything
this command started, and nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import click
import orjson
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console

from .admin import BrokerUnreachable, create_topics, produce_records
from .recording import by_event_time, read_jsonl, rebase
from .security import from_env
from .topics import ALERTS, CODE_CHANGES, DEAD_LETTERS

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "tests" / "scenarios"
STYLE = {"red": "bold red", "yellow": "bold yellow", "green": "bold green"}
console = Console(highlight=False)


def _broker_running(env: dict[str, str]) -> bool:
    return subprocess.call(["bash", str(REPO / "deploy" / "broker.sh"), "status"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0


def _wait_ready(port: int, worker: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise click.ClickException("the worker exited; see .cache/demo-worker.log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as resp:
                if resp.status == 200 and orjson.loads(resp.read()).get("partitions"):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise click.ClickException("the worker did not become ready; see .cache/demo-worker.log")


def _show(topic: str, value: dict) -> None:
    clock = value.get("emitted_at", value.get("received_at", ""))[11:19]
    if topic == CODE_CHANGES:
        mark = " [blue]blue mark[/]" if value.get("mark") == "blue" else ""
        console.print(
            f"{clock}  [bold]{value['kind']:<10}[/] {value['person']:<24} "
            f"[{STYLE[value['from']]}]{value['from']:>6}[/] → [{STYLE[value['to']]}]{value['to']:<6}[/]"
            f"{mark}  {value['rule']}  [dim]{value['reason']['en'][:70]}[/]")
    elif topic == ALERTS:
        who = value.get("person") or value.get("subject")
        console.print(f"{clock}  [magenta]ALERT {value['kind']:<19}[/] {who:<24} "
                      f"[dim]{value['detail']['en'][:80]}[/]")
    else:
        console.print(f"{clock}  [red]DEAD LETTER[/] {value['reason']}: {value['detail'][:80]}")


def _tail(bootstrap: str, ready: threading.Event, stop: threading.Event) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=500, **from_env().kafka_python())
    parts = [TopicPartition(t, p) for t in (CODE_CHANGES, ALERTS, DEAD_LETTERS)
             for p in consumer.partitions_for_topic(t) or ()]
    consumer.assign(parts)
    consumer.seek_to_end(*parts)
    for part in parts:
        consumer.position(part)
    ready.set()
    while not stop.is_set():
        for message in consumer:
            _show(message.topic, orjson.loads(message.value))
            if stop.is_set():
                break
    consumer.close()


@click.command()
@click.option("--scenario", "scenarios", multiple=True,
              default=["taiyuan-0820", "z22", "pingyao"], show_default=True,
              help="Bundled scenario(s) under tests/scenarios to feed.")
@click.option("--rate", type=float, default=25.0, show_default=True,
              help="Records per second fed to the broker.")
@click.option("--port", type=int, default=9092, show_default=True, help="Local broker port.")
@click.option("--web-port", type=int, default=6066, show_default=True)
def main(scenarios: tuple[str, ...], rate: float, port: int, web_port: int) -> None:
    """Run the live pipeline on a local broker and watch codes change."""
    env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(port + 1)}
    bootstrap = f"127.0.0.1:{port}"
    started_broker = False
    if not _broker_running(env):
        console.print("[bold]starting the local Kafka broker[/] (first run downloads Kafka)")
        subprocess.run(["bash", str(REPO / "deploy" / "broker.sh"), "start"], env=env, check=True)
        started_broker = True
    worker: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    try:
        try:
            created = create_topics(bootstrap)
        except BrokerUnreachable as exc:
            raise click.ClickException(str(exc)) from None
        console.print(f"topics ready ({len(created)} created)")
        log_path = REPO / ".cache" / "demo-worker.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        worker_env = {**os.environ, "CHECKPOINT_BROKER": bootstrap,
                      "CHECKPOINT_WEB_PORT": str(web_port), "CHECKPOINT_STORE": "memory://"}
        with open(log_path, "ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker", "--no-create-topics"],
                cwd=REPO, env=worker_env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        console.print(f"worker starting (log: {log_path.relative_to(REPO)}, "
                      f"http://127.0.0.1:{web_port}/ready)")
        _wait_ready(web_port, worker)
        tail_ready = threading.Event()
        tailer = threading.Thread(target=_tail, args=(bootstrap, tail_ready, stop), daemon=True)
        tailer.start()
        tail_ready.wait(30)
        for name in scenarios:
            records = by_event_time(read_jsonl(SCENARIOS / f"{name}.jsonl"))
            records, days = rebase(records, int(time.time() * 1000))
            console.rule(f"[bold]{name}[/]: {len(records)} records, shifted {days} days to today")
            for _ in produce_records(bootstrap, records, rate=rate):
                pass
            time.sleep(2)
        console.rule("fed; watching for releases and alerts (Ctrl-C stops everything started here)")
        while worker.poll() is None:
            time.sleep(0.5)
        raise click.ClickException("the worker exited; see .cache/demo-worker.log")
    except KeyboardInterrupt:
        console.print("\nstopping")
    finally:
        stop.set()
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        if started_broker:
            subprocess.run(["bash", str(REPO / "deploy" / "broker.sh"), "stop"], env=env,
                           check=False)


if __name__ == "__main__":
    main()
