"""Cached label lookups (`metrics.cache_labels`) export exactly what plain lookups do."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from streams import metrics


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for m in registry.collect()
            for s in m.samples if s.name == name}


def test_cached_children_count_like_plain_ones():
    registry = CollectorRegistry()
    counter = metrics.cache_labels(Counter("c", "c", ["topic"], registry=registry))
    counter.labels("a").inc()
    counter.labels(topic="a").inc()
    counter.labels("b").inc(2)
    assert counter.labels("a") is counter.labels("a")
    assert _samples(registry, "c_total") == {(("topic", "a"),): 2.0, (("topic", "b"),): 2.0}


def test_a_removed_child_is_not_handed_out_again():
    """Faust's sensor removes per-partition series after a rebalance; the next lookup
    must make a new, exported child, not return the orphaned one."""
    registry = CollectorRegistry()
    gauge = metrics.cache_labels(Gauge("g", "g", ["topic", "partition"], registry=registry))
    gauge.labels(topic="t", partition=0).set(5)
    gauge.remove("t", "0")
    assert _samples(registry, "g") == {}
    gauge.labels(topic="t", partition=0).set(7)
    assert _samples(registry, "g") == {(("partition", "0"), ("topic", "t")): 7.0}
    gauge.clear()
    gauge.labels(topic="t", partition=1).set(1)
    assert _samples(registry, "g") == {(("partition", "1"), ("topic", "t")): 1.0}


def test_series_a_panel_or_alert_reads_exist_before_their_first_event():
    """A labelled series appears only once a child exists: until then a dashboard panel
    shows no data and `rate()` misses the first event (the active-controls gauge is set
    by a timer that first runs 10 s after the worker starts)."""
    from prometheus_client import REGISTRY

    from streams.observability import initialise_series

    initialise_series()
    controls = _samples(REGISTRY, "checkpoint_active_controls")
    assert {dict(labels)["colour"] for labels in controls} == {"green", "yellow", "red"}
    errors = _samples(REGISTRY, "checkpoint_output_send_errors_total")
    assert {dict(labels)["topic"] for labels in errors} >= {"checkpoint.code-changes",
                                                            "checkpoint.alerts"}


def test_faust_sensor_names_a_stream_once_as_upstream_does(monkeypatch):
    """The sensor's per-event label is upstream's `_stream_label`, computed once a stream
    (`streams.runtime.sensor.WorkerMonitor`): a faust-streaming upgrade that renames or
    reshapes it fails here."""
    import faust
    from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
    from faust.types import TP

    from streams.runtime.sensor import WorkerMonitor

    registry = CollectorRegistry()
    faust_metrics = FaustMetrics.create(registry, "pin")
    app = faust.App("pin-sensor", broker="kafka://127.0.0.1:1")
    stream = app.topic("checkpoint.scans.station", "checkpoint.scans.highway").stream()
    upstream = PrometheusMonitor(metrics=faust_metrics)
    expected = upstream._stream_label(stream)
    calls = []
    original = PrometheusMonitor._stream_label

    def counted(self, s):
        calls.append(s)
        return original(self, s)

    monkeypatch.setattr(PrometheusMonitor, "_stream_label", counted)
    ours = WorkerMonitor(metrics=faust_metrics)
    for offset in range(3):
        ours.on_stream_event_in(TP("checkpoint.scans.station", 0), offset, stream, None)
    ours.flush()
    labels = {dict(labels)["stream"] for labels in _samples(registry, "pin_total_events_per_stream_total")}
    assert labels == {f"stream.{expected}.events"} and len(calls) == 1


class Owner:
    """A stream's task owner (upstream keys its tallies by it, weakly)."""


def test_the_worker_sensor_reports_every_series_as_upstreams_does():
    """Driven by the same hooks as upstream's `PrometheusMonitor`, `WorkerMonitor` reports
    the same value in every series once its registry is collected (a scrape), rebalances
    included; the per-event runtime histogram counts the same events."""
    from types import SimpleNamespace

    import faust
    from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
    from faust.types import TP

    from streams.runtime import sensor

    app = faust.App("pin-sensor-series", broker="kafka://127.0.0.1:1")
    streams_ = [app.topic("t.a").stream(), app.topic("t.b", "t.c").stream()]
    for stream in streams_:
        stream.task_owner = Owner()  # the agent's task, as a running stream has
    table = SimpleNamespace(name="persons")
    runs = {}
    for name, cls in (("upstream", PrometheusMonitor), ("ours", sensor.WorkerMonitor)):
        registry = CollectorRegistry()
        flush = sensor.Flush()
        registry.register(flush)
        monitor = cls(metrics=FaustMetrics.create(registry, "pin"))
        if isinstance(monitor, sensor.WorkerMonitor):
            flush.monitor = monitor
        for n in range(30):
            tp = TP(("t.a", "t.b", "t.c")[n % 3], n % 4)
            message = SimpleNamespace(time_in=None, time_out=None, time_total=None)
            monitor.track_tp_end_offset(tp, 100 + n)
            monitor.on_message_in(tp, n, message)
            state = monitor.on_stream_event_in(tp, n, streams_[n % 2], None)
            monitor.on_table_get(table, b"k")
            if n % 5 == 0:
                monitor.on_table_set(table, b"k", b"v")
            if n % 7 == 0:
                monitor.on_table_del(table, b"k")
            if n % 9 != 0:  # some still in flight when the registry is read
                monitor.on_stream_event_out(tp, n, streams_[n % 2], None, state)
                monitor.on_message_out(tp, n, message)
            if n == 12:
                monitor.on_rebalance_end(app, monitor.on_rebalance_start(app))
        # every sample but creation times, and of the timing histograms only the counts
        runs[name] = {(s.name, tuple(sorted(s.labels.items()))): s.value
                      for m in registry.collect() for s in m.samples
                      if not s.name.endswith("_created")
                      and (m.type != "histogram" or s.name.endswith("_count"))}
    assert runs["ours"] == runs["upstream"]
    assert runs["ours"][("pin_messages_received_total", ())] == 30
