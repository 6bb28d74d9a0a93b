"""Faust's Prometheus sensor, the same series at a fraction of the cost a message.

Upstream (`faust.sensors.prometheus.PrometheusMonitor`), every message passes six hooks
(`track_tp_end_offset`, `on_message_in`, `on_stream_event_in`, the table read,
`on_stream_event_out`, `on_message_out`), which make eleven locked prometheus-client
updates and keep Faust's in-process statistics (latency deques, per-stream and per-task
tallies keyed by `str(stream)`): about 24 µs a message measured, more than a tenth of
the Faust floor's whole cost, and the floor (`bench/faust_floor.py`) runs without it.

Here each hook adds to plain integers and dictionaries, and the series are brought up to
date when they are read: `flush()`, called by a collector registered in the same registry
ahead of Faust's metrics (`install`), so a scrape of `/metrics` sees every message counted
so far, exactly as upstream's series would say. The two in-flight gauges, raised and
lowered once a message, are set to their net value. The per-event runtime histogram is
still observed at once. What waits for a scrape is one number a series, so nothing
grows when nobody scrapes. On a rebalance the pending values are written before upstream
drops the per-partition series, as they would have been. Faust's own statistics page (the
web server's `/`) keeps its counters but no longer its per-stream, per-task and latency
figures.

A stream's label is computed once (upstream derives it with a regular expression on every
event; a stream's label never changes).

Upstream: no issue tracks the cost; tests/unit/test_metrics.py drives this sensor and
upstream's with the same hooks and compares every series, so an upgrade that adds or
renames one fails there.
"""

from __future__ import annotations

import weakref
from collections import Counter
from time import monotonic
from typing import Any

from faust.sensors.prometheus import PrometheusMonitor


class WorkerMonitor(PrometheusMonitor):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: stream -> its `total_events_per_stream` label (upstream's, computed once)
        self._stream_series: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._received = 0
        self._events = 0
        self._by_topic: Counter[str] = Counter()
        self._by_stream: Counter[str] = Counter()
        self._by_table: Counter[tuple[str, str]] = Counter()
        self._read: dict[Any, int] = {}
        self._end: dict[Any, int] = {}

    # ---------------------------------------------------------------- per message
    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        self.messages_received_total += 1
        self.messages_active += 1
        self.messages_received_by_topic[tp.topic] += 1
        self.tp_read_offsets[tp] = offset
        self._received += 1
        self._by_topic[tp.topic] += 1
        self._read[tp] = offset

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> dict | None:
        self.events_total += 1
        self.events_active += 1
        self._events += 1
        series = self._stream_series.get(stream)
        if series is None:
            series = self._stream_series[stream] = f"stream.{self._stream_label(stream)}.events"
        self._by_stream[series] += 1
        return {"time_in": monotonic()}

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: dict | None = None) -> None:
        if state is not None:
            self.events_active -= 1
            self._metrics.events_runtime_latency.observe((monotonic() - state["time_in"]) * 1000)

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        self.messages_active -= 1

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        self.tp_end_offsets[tp] = offset
        self._end[tp] = offset

    def on_table_get(self, table: Any, key: Any) -> None:
        self._by_table[(table.name, self.KEYS_RETRIEVED)] += 1

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        self._by_table[(table.name, self.KEYS_UPDATED)] += 1

    def on_table_del(self, table: Any, key: Any) -> None:
        self._by_table[(table.name, self.KEYS_DELETED)] += 1

    # ------------------------------------------------------------------ writing
    def flush(self) -> None:
        """Bring the series up to date with what the hooks counted since the last time."""
        m = self._metrics
        if self._received:
            m.messages_received.inc(self._received)
            self._received = 0
        if self._events:
            m.total_events.inc(self._events)
            self._events = 0
        for topic, n in self._by_topic.items():
            m.messages_received_per_topics.labels(topic=topic).inc(n)
        for label, n in self._by_stream.items():
            m.total_events_per_stream.labels(stream=label).inc(n)
        for (table, operation), n in self._by_table.items():
            m.table_operations.labels(table=f"table.{table}", operation=operation).inc(n)
        for tp, offset in self._read.items():
            m.messages_received_per_topics_partition.labels(
                topic=tp.topic, partition=tp.partition).set(offset)
        for tp, offset in self._end.items():
            m.topic_partition_end_offset.labels(topic=tp.topic, partition=tp.partition).set(offset)
        for pending in (self._by_topic, self._by_stream, self._by_table, self._read, self._end):
            pending.clear()
        m.active_messages.set(self.messages_active)
        m.total_active_events.set(self.events_active)

    def on_rebalance_end(self, app: Any, state: dict) -> None:
        self.flush()  # upstream drops the per-partition and per-topic series next
        super().on_rebalance_end(app, state)


class Flush:
    """A collector with no series of its own: collecting it writes the monitor's pending
    values, so a registry collecting it before Faust's metrics reports them up to date."""

    def __init__(self) -> None:
        self.monitor: WorkerMonitor | None = None

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        if self.monitor is not None:
            self.monitor.flush()
        return []
