"""Drive the real local broker and real worker processes from tests.

Each test gets its own topic prefix and consumer group, so tests share one broker
without seeing each other's messages.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from streams.admin import create_topics, produce_records
from streams.engine.timeutil import local_day, parse_ts

REPO = Path(__file__).resolve().parents[2]
INPUTS = ("checkpoint.scans.station", "checkpoint.scans.highway", "checkpoint.risk-areas",
          "checkpoint.pcr-results", "checkpoint.contact-notices", "checkpoint.operator-commands")
CONSUMED = (*INPUTS, "checkpoint.internal.person-work")
OUTPUTS = ("checkpoint.code-changes", "checkpoint.alerts", "checkpoint.dead-letters")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Namespace:
    """One test's topics (prefixed) and consumer group on the shared broker."""

    def __init__(self, bootstrap: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.bootstrap = bootstrap
        self.namespace = f"t{tag}"
        self.prefix = f"{self.namespace}."
        self.app_id = f"{self.namespace}.checkpoint-streams"
        create_topics(bootstrap, prefix=self.prefix)

    def topic(self, name: str) -> str:
        return self.prefix + name

    # -- producing ---------------------------------------------------------------
    def produce(self, records: Iterable[dict[str, Any]]) -> int:
        prefixed = [{**r, "topic": self.topic(r["topic"])} for r in records]
        return max(produce_records(self.bootstrap, prefixed), default=0)

    def feed(self, records: list[dict[str, Any]], settle: float = 1.5) -> None:
        """Produce a recording in event-time order, one (topic, day) run at a time, waiting
        for the workers to finish each run: topics are consumed concurrently, so this is
        what keeps a live run in the replay's order across topics."""
        ordered = sorted(enumerate(records), key=lambda p: (parse_ts(p[1]["value"]["event_time"]), p[0]))
        runs = itertools.groupby(
            (r for _, r in ordered),
            key=lambda r: (r["topic"], local_day(parse_ts(r["value"]["event_time"]))))
        for _, run in runs:
            self.produce(list(run))
            self.wait_idle(settle=settle)

    # -- waiting -----------------------------------------------------------------
    def lag(self) -> int:
        return sum(self.lags().values())

    def lags(self) -> dict[str, int]:
        """Uncommitted records per consumed "topic:partition" (every partition, 0 included)."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            parts = [TopicPartition(self.topic(t), p) for t in CONSUMED
                     for p in consumer.partitions_for_topic(self.topic(t)) or ()]
            ends = consumer.end_offsets(parts)
            committed = admin.list_group_offsets({self.app_id: None}).get(self.app_id, {})
            out = {}
            for tp in parts:
                done = committed.get(tp)
                out[f"{tp.topic[len(self.prefix):]}:{tp.partition}"] = ends[tp] - (
                    done.offset if done is not None and done.offset >= 0 else 0)
            return out
        finally:
            consumer.close()
            admin.close()

    def wait_idle(self, timeout: float = 90.0, settle: float = 1.5) -> None:
        """Until every consumed topic is committed to its end twice, `settle` s apart."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            if self.lag() == 0:
                quiet += 1
                if quiet >= 2:
                    return
                time.sleep(settle)
            else:
                quiet = 0
                time.sleep(0.3)
        # which partitions are behind tells a stalled partition from a slow worker; the
        # workers' logs are in the test's tmp_path (worker-<name>-<port>.log)
        behind = {tp: n for tp, n in self.lags().items() if n}
        raise TimeoutError(f"workers still behind after {timeout} s: {behind}")

    # -- consuming ---------------------------------------------------------------
    def read(self, topics: Iterable[str] = OUTPUTS, idle_ms: int = 1500) -> list[dict[str, Any]]:
        """Every message on the (unprefixed) topics, as replay-shaped records."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                 consumer_timeout_ms=idle_ms)
        try:
            parts = [TopicPartition(self.topic(t), p) for t in topics
                     for p in consumer.partitions_for_topic(self.topic(t)) or ()]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            out = []
            for message in consumer:
                out.append({"topic": message.topic[len(self.prefix):],
                            "key": message.key.decode() if message.key else None,
                            "value": orjson.loads(message.value),
                            "partition": message.partition, "offset": message.offset})
            return out
        finally:
            consumer.close()


def read_topic(bootstrap: str, topic: str, idle_ms: int = 1500) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) of a topic, in partition order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=idle_ms)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        return [(m.key, m.value) for m in consumer]
    finally:
        consumer.close()


def last_values(bootstrap: str, topic: str, idle_ms: int = 1500) -> dict[bytes | None, bytes | None]:
    """Every key of a topic (a changelog, say) with its last value (None: a tombstone)."""
    return dict(read_topic(bootstrap, topic, idle_ms))


class Worker:
    """A real `checkpoint-streams worker` process."""

    def __init__(self, ns: Namespace, log_dir: Path, *, clock: str = "stream",
                 env: dict[str, str] | None = None, name: str = "w1") -> None:
        self.ns = ns
        self.port = free_port()
        self.log_path = log_dir / f"worker-{name}-{self.port}.log"
        self.env = {
            **os.environ,
            "CHECKPOINT_BROKER": ns.bootstrap,
            "CHECKPOINT_NAMESPACE": ns.namespace,
            "CHECKPOINT_WEB_PORT": str(self.port),
            "CHECKPOINT_DATA_DIR": str(log_dir / f"data-{name}-{self.port}"),
            "CHECKPOINT_COMMIT_INTERVAL": "0.3",
            "CHECKPOINT_CLOCK": clock,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        bind = self.env.get("CHECKPOINT_WEB_BIND", "")
        #: where its web server answers (its bind address; loopback when it binds them all)
        self.host = bind if bind not in ("", "0.0.0.0", "::") else "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"

    def start(self, wait: bool = True) -> Worker:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--no-create-topics",
             "--web-port", str(self.port)],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                return resp.status, orjson.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, orjson.loads(err.read() or b"null")

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            try:
                status, body = self.get("/ready")
                if status == 200 and body.get("partitions"):
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"worker not ready in {timeout} s: {self.log_path.read_text()[-3000:]}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def worker_pool(ns: Namespace, log_dir: Path, *, finish: str = "stop") -> Iterator[Any]:
    """A `start(name=..., wait=..., **Worker kwargs)` function for a test; every worker it
    started is stopped (or killed: `finish="kill"`) when the test ends."""
    started: list[Worker] = []

    def start(name: str = "w1", wait: bool = True, **kwargs: Any) -> Worker:
        worker = Worker(ns, log_dir, name=name, **kwargs)
        started.append(worker)
        return worker.start(wait=wait)

    yield start
    for worker in started:
        getattr(worker, finish)()


def comparable(records: Iterable[dict[str, Any]]) -> list[bytes]:
    """Outputs without processing-time fields, sorted: what live and replay must share."""
    out = []
    for record in records:
        value = {k: v for k, v in record["value"].items() if k not in ("emitted_at", "received_at")}
        key = record["key"]
        if record["topic"] == "checkpoint.dead-letters":  # where it came from differs by design
            value = {k: value[k] for k in ("reason", "input_id", "detail")}
            key = None
        out.append(orjson.dumps({"topic": record["topic"], "key": key, "value": value},
                                option=orjson.OPT_SORT_KEYS))
    return sorted(out)
