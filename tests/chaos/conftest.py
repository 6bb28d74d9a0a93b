"""Fixtures for the crash suite: its own real broker, workers, a paced feed, the summary.

The suite runs its own single-node broker (port CHECKPOINT_TEST_KAFKA_PORT + 100, so
19192 by default) because one test stops and restarts it: the shared test broker of
tests/integration is never touched. Every reconciliation is printed at the end of the
session (pytest_terminal_summary), so CI output shows the numbers without `-s`.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.admin import producer
from tests.chaos.streamgen import Reconciliation
from tests.integration.harness import REPO, Namespace, Worker, read_topic, worker_pool

PORT = int(os.environ.get("CHECKPOINT_TEST_KAFKA_PORT", "19092")) + 100
SUMMARY: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: crash test against a real broker (tests/chaos)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/chaos" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.chaos)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SUMMARY:
        terminalreporter.section("crash-test reconciliation")
        for line in SUMMARY:
            terminalreporter.write_line(line)


def report(rec: Reconciliation, known_bug: bool = False) -> None:
    """Keep a reconciliation for the session summary and print it now (seen with -s)."""
    label = "OK   " if rec.ok else ("XFAIL (known bug) " if known_bug else "FAIL ")
    SUMMARY.append(label + rec.line())
    print(rec.line())
    for example in rec.examples:
        print("   ", example)


def report_line(line: str) -> None:
    SUMMARY.append("OK   " + line)
    print(line)


class Broker:
    """The suite's own broker, which tests may stop and start."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(port + 1)}

    def _run(self, action: str, **env: str) -> None:
        subprocess.run(["bash", str(REPO / "deploy" / "broker.sh"), action],
                       env={**self.env, **env}, check=True, stdout=subprocess.DEVNULL)

    def start(self, fresh: bool = False) -> None:
        self._run("start", KAFKA_FRESH="1" if fresh else "0")

    def stop(self) -> None:
        self._run("stop")


@pytest.fixture(scope="session")
def chaos_broker() -> Iterator[Broker]:
    broker = Broker(PORT)
    broker.start(fresh=True)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def ns(chaos_broker: Broker) -> Namespace:
    return Namespace(chaos_broker.bootstrap)


@pytest.fixture
def workers(ns: Namespace, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Like the shared fixture, but kills: a worker under chaos may not stop cleanly."""
    yield from worker_pool(ns, tmp_path, finish="kill")


class Feed(threading.Thread):
    """Produce records at a steady rate in the background (the stream keeps coming while
    workers crash); `sent` counts what the producer has handed to Kafka. `pause` flushes
    and holds the feed (a scanner buffering while the broker is down), `resume` goes on."""

    def __init__(self, ns: Namespace, records: list[dict[str, Any]], rate: float) -> None:
        super().__init__(daemon=True)
        self.ns = ns
        self.records = [{**r, "topic": ns.topic(r["topic"])} for r in records]
        self.rate = rate
        self.sent = 0
        self.error: BaseException | None = None
        #: sends the broker refused: a reconciliation would blame the worker for them
        self.undelivered: list[BaseException] = []
        self._go = threading.Event()
        self._go.set()
        self._held = threading.Event()

    def run(self) -> None:
        sender = producer(self.ns.bootstrap)
        try:
            started, paused = time.monotonic(), 0.0
            for count, record in enumerate(self.records, start=1):
                if not self._go.is_set():
                    sender.flush()
                    self._held.set()
                    held_at = time.monotonic()
                    self._go.wait()
                    paused += time.monotonic() - held_at
                    self._held.clear()
                value = record["value"]
                key = record.get("key")
                sender.send(record["topic"], key=key.encode() if isinstance(key, str) else key,
                            value=value if isinstance(value, bytes) else orjson.dumps(value)
                            ).add_errback(self.undelivered.append)
                self.sent = count
                delay = started + paused + count / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            sender.flush()
        except BaseException as exc:  # reported by finish()
            self.error = exc
        finally:
            sender.close()

    def wait_for(self, fraction: float, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.sent < fraction * len(self.records):
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"feed stuck at {self.sent}"
            time.sleep(0.05)

    def pause(self) -> None:
        self._go.clear()
        while not self._held.wait(0.1):
            assert self.is_alive(), "the feed ended before it could pause"

    def resume(self) -> None:
        self._go.set()

    def finish(self, timeout: float = 300.0) -> None:
        self.join(timeout)
        assert not self.is_alive(), "feed did not finish"
        if self.error is not None:
            raise self.error
        assert not self.undelivered, f"{len(self.undelivered)} inputs not produced: {self.undelivered[:3]}"


def changelog(ns: Namespace, table: str = "persons",
              history: dict[str, list[bytes | None]] | None = None) -> dict[str, bytes]:
    """A table as a recovering worker would rebuild it: the last value per key (and, in
    `history`, every value each key had, in order, for post-mortems)."""
    rows: dict[str, bytes] = {}
    for key, value in read_topic(ns.bootstrap, f"{ns.app_id}-{table}-changelog"):
        name = orjson.loads(key) if key and key[:1] == b'"' else (key or b"").decode()
        if history is not None:
            history.setdefault(name, []).append(value)
        if value is None:
            rows.pop(name, None)
        else:
            rows[name] = value
    return rows


def settle_outputs(ns: Namespace, expected: int, timeout: float = 60.0,
                   quiet: float = 4.0) -> list[dict[str, Any]]:
    """Read the output topics until the distinct events reach `expected` or stop growing
    for `quiet` seconds (timers may fire a little after the inputs are consumed)."""
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    while True:
        live = ns.read(idle_ms=800)
        distinct = len({r["value"]["id"] for r in live if r["topic"] != "checkpoint.dead-letters"})
        if distinct >= expected:
            return live
        if distinct != last:
            last, last_change = distinct, time.monotonic()
        if time.monotonic() - last_change >= quiet or time.monotonic() >= deadline:
            return live
        time.sleep(0.5)
