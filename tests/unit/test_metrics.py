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
    (`observability._steady_labels_monitor`): a faust-streaming upgrade that renames or
    reshapes it fails here."""
    import faust
    from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor

    from streams.observability import _steady_labels_monitor

    registry = CollectorRegistry()
    faust_metrics = FaustMetrics.create(registry, "pin")
    app = faust.App("pin-sensor", broker="kafka://127.0.0.1:1")
    stream = app.topic("checkpoint.scans.station", "checkpoint.scans.highway").stream()
    upstream = PrometheusMonitor(metrics=faust_metrics)
    ours = _steady_labels_monitor()(metrics=faust_metrics)
    expected = upstream._stream_label(stream)
    assert ours._stream_label(stream) == expected
    calls = []
    original = PrometheusMonitor._stream_label

    def counted(self, s):
        calls.append(s)
        return original(self, s)

    monkeypatch.setattr(PrometheusMonitor, "_stream_label", counted)
    fresh = _steady_labels_monitor()(metrics=faust_metrics)
    labels = {fresh._stream_label(stream) for _ in range(3)}
    assert labels == {expected} and len(calls) == 1
