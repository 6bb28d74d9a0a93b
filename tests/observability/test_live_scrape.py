"""The real thing: broker + worker + Prometheus on loopback, fed scans, read back.

One worker and one Prometheus (deploy/prometheus/prometheus.local.yml with the repo's
rules, scraping every second) serve the whole module. The inputs are pushed once, with
event times of *now* (wall clock), and every test reads what they did:

- the scrape test: exact deltas of the latency histogram and the counters, and the
  latency Prometheus reports agrees with the emitted events' own timestamps;
- every dashboard query resolves against this Prometheus, and names only metrics the
  worker really exports (or recording rules built from them);
- the rules evaluate without errors on real data; the one alert the inputs call for fires;
- health and readiness endpoints; JSON logs with input ids and no identity number.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.engine.timeutil import format_ts, parse_ts
from tests.integration.harness import Namespace, Worker
from tests.observability import deployfiles as D
from tests.observability.promserver import Prometheus

pytestmark = pytest.mark.integration

AREA = "540102"                    # designated high below, two days before now
RULE = "TY0820-R1-high"            # Taiyuan's rule for a stay in a high-risk area
ID_NUMBER = "11010519491231002X"   # shaped like a resident identity number (made up)
N_RED, N_GREEN = 5, 3              # scans that turn red / that match no rule


class Stack:
    def __init__(self, ns: Namespace, worker: Worker, prom: Prometheus) -> None:
        self.ns, self.worker, self.prom = ns, worker, prom
        self.ready_log: list[tuple[int, Any]] = []
        self.pushed: dict[str, Any] = {}

    def topic(self, name: str) -> str:
        return self.ns.topic(name)


def _poll_readiness(worker: Worker, timeout: float = 90.0) -> list[tuple[int, Any]]:
    """Poll /ready from process start until ready, keeping every answer seen."""
    seen: list[tuple[int, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.process is not None
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited: {worker.log_path.read_text()[-3000:]}")
        try:
            status, body = worker.get("/ready")
            seen.append((status, body))
            if status == 200 and body.get("partitions"):
                return seen
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"worker not ready: {worker.log_path.read_text()[-3000:]}")


def _push(stack: Stack) -> None:
    ns = stack.ns
    now = int(time.time() * 1000)
    two_days_ago = format_ts(now - 2 * 86_400_000)
    ns.produce([{"topic": "checkpoint.risk-areas", "key": AREA, "value": {
        "id": f"ra-{AREA}-obs", "area": AREA, "level": "high",
        "effective_at": two_days_ago, "event_time": two_days_ago}}])
    # the register must hold the area before the scans arrive (they are separate topics)
    deadline = time.monotonic() + 60
    while AREA not in [row["area"] for row in stack.worker.get("/areas")[1]["areas"]]:
        assert time.monotonic() < deadline, "the register never saw the area update"
        time.sleep(0.2)

    now = int(time.time() * 1000)
    yesterday = str(dt.datetime.fromtimestamp(now / 1000, dt.timezone(dt.timedelta(hours=8))).date()
                    - dt.timedelta(days=1))

    def scan(i: int, travel: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
        person = f"obs-person-{i:04d}"
        value = {"id": f"st-obs-{i:04d}", "person": person, "event_time": format_ts(now),
                 "checkpoint": {"id": "TY-STATION-01", "kind": "station", "area": "140106"},
                 "travel": travel, **extra}
        return {"topic": "checkpoint.scans.station", "key": person, "value": value}

    red = [scan(i, [{"area": AREA, "date": yesterday}]) for i in range(N_RED)]
    green = [scan(100 + i, []) for i in range(N_GREEN)]
    bad = [
        {"topic": "checkpoint.scans.station", "key": "obs-bad-0001", "value": "not a scan"},
        scan(200, [], sample=f"S-{ID_NUMBER}"),          # an identity number in a field
    ]
    positive = {"topic": "checkpoint.pcr-results", "key": "S-obs-1", "value": {
        "id": "rs-obs-1", "kind": "single", "person": "obs-person-0900", "sample": "S-obs-1",
        "collected_at": format_ts(now - 3_600_000), "event_time": format_ts(now),
        "result": "positive"}}
    # Two batches of red scans, Prometheus scraping in between: a histogram series is born
    # at its first observation, so rate() over it only sees what comes after that scrape.
    ns.produce([*red[:2], *green, *bad])
    ns.wait_idle(settle=0.5)
    stack.prom.wait_for(metric("checkpoint_e2e_latency_seconds_count", stream="station",
                               outcome="assign"), lambda v: v == 2)
    ns.produce(red[2:])
    ns.wait_idle(settle=0.5)
    ns.produce([positive])
    ns.wait_idle(settle=0.5)
    stack.pushed = {"red": red, "green": green, "bad": bad, "positive": positive}


@pytest.fixture(scope="module")
def stack(broker: str, prometheus_bin: str, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("observability")
    ns = Namespace(broker)
    worker = Worker(ns, tmp, clock="wall", env={"CHECKPOINT_LAG_INTERVAL": "1",
                                                  "CHECKPOINT_LOG_OUTPUTS": "each"}, name="obs")
    prom = Prometheus(prometheus_bin, tmp / "prometheus", [f"127.0.0.1:{worker.port}"])
    s = Stack(ns, worker, prom)
    try:
        worker.start(wait=False)
        s.ready_log = _poll_readiness(worker)
        prom.start()
        prom.wait_for('up{job="checkpoint-worker"}', lambda v: v == 1)
        _push(s)
        yield s
    finally:
        prom.stop()
        worker.stop()


def metric(name: str, **labels: str) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in {"job": "checkpoint-worker", **labels}.items())
    return f"{name}{{{inner}}}"


# ------------------------------------------------------------------------- scrape
def test_scrape_latency_histogram_and_counters_moved_by_the_inputs(stack: Stack):
    prom = stack.prom
    expected = {
        metric("checkpoint_e2e_latency_seconds_count", stream="station", outcome="assign"): N_RED,
        metric("checkpoint_e2e_latency_seconds_count", stream="result", outcome="positive_result"): 1,
        metric("checkpoint_inputs_total", stream="area_update", status="applied"): 1,
        metric("checkpoint_inputs_total", stream="station", status="applied"): N_RED,
        metric("checkpoint_inputs_total", stream="station", status="unmatched"): N_GREEN,
        metric("checkpoint_inputs_total", stream="station", status="dead_letter"): 2,
        metric("checkpoint_inputs_total", stream="result", status="applied"): 1,
        metric("checkpoint_dead_letters_total", stream="station", reason="schema_violation"): 1,
        metric("checkpoint_dead_letters_total", stream="station", reason="raw_identity_number"): 1,
        metric("checkpoint_code_changes_total", kind="assign", from_colour="green", to_colour="red",
               rule=RULE): N_RED,
        metric("checkpoint_alerts_total", kind="positive_result", severity="page"): 1,
        # the positive result turns its person red too (home jurisdiction: issue 15)
        metric("checkpoint_outputs_total", topic=stack.topic("checkpoint.code-changes")): N_RED + 1,
        metric("checkpoint_outputs_total", topic=stack.topic("checkpoint.dead-letters")): 2,
        metric("checkpoint_outputs_total", topic=stack.topic("checkpoint.alerts")): 1,
        metric("faust_messages_received_per_topic_total",
               topic=stack.topic("checkpoint.scans.station")): N_RED + N_GREEN + 2,
    }
    for expr, want in expected.items():
        prom.wait_for(expr, lambda v, want=want: v is not None and v >= want)
    got = {expr: prom.value(expr) for expr in expected}
    assert got == expected
    # every observation of a code change is in a bucket: the histogram is consistent
    assert prom.value(metric("checkpoint_e2e_latency_seconds_bucket", stream="station",
                             outcome="assign", le="+Inf")) == N_RED
    # the counters Prometheus holds are the worker's own: scrape and source agree
    exposed = urllib.request.urlopen(f"http://127.0.0.1:{stack.worker.port}/metrics").read().decode()
    assert f'checkpoint_inputs_total{{status="unmatched",stream="station"}} {float(N_GREEN)}' in exposed


def test_reported_latency_is_the_emitted_events_own_latency(stack: Stack):
    """The histogram is in seconds and measures event time -> emit (not Faust's ms runtime):
    its mean equals the mean of emitted_at - event_time read back from the output topic."""
    prom = stack.prom
    base = dict(stream="station", outcome="assign")
    count = prom.wait_for(metric("checkpoint_e2e_latency_seconds_count", **base),
                          lambda v: v == N_RED)
    assert count
    mean = prom.value(metric("checkpoint_e2e_latency_seconds_sum", **base)) / count
    changes = [r["value"] for r in stack.ns.read(["checkpoint.code-changes"])
               if r["value"]["caused_by"][0].startswith("st-")]
    assert len(changes) == N_RED
    own = sum(parse_ts(c["emitted_at"]) - parse_ts(c["event_time"]) for c in changes) / len(changes) / 1000
    print(f"\ne2e latency: Prometheus mean {mean:.3f} s, from the events {own:.3f} s")
    assert mean >= 0 and own >= 0
    assert abs(mean - own) <= 0.25 + 0.1 * own


def test_consumer_lag_is_sampled_per_owned_partition(stack: Stack):
    prom = stack.prom
    station = stack.topic("checkpoint.scans.station")
    series = metric("checkpoint_consumer_lag_messages", topic=station)
    prom.wait_for(f"count({series})", lambda v: v == 4)          # the worker owns all four
    prom.wait_for(f"sum({series})", lambda v: v == 0)            # and has caught up
    # the recording rule the lag alert reads sums the same series per topic
    prom.wait_for(f'topic:checkpoint_consumer_lag_messages:sum{{topic="{station}"}}', lambda v: v == 0)


# ---------------------------------------------------------------------- dashboard
def test_every_dashboard_query_resolves_against_a_live_prometheus(stack: Stack):
    prom = stack.prom
    exposed = D.exposition_names(
        urllib.request.urlopen(f"http://127.0.0.1:{stack.worker.port}/metrics").read().decode())
    scraped = set(prom.api("label/__name__/values"))
    recorded = D.recorded_names()
    # recording rules read only what the worker exports
    for rule in D.rules():
        for name in D.metric_names(rule["expr"]):
            assert name in exposed | recorded | D.SYNTHETIC, (rule.get("record") or rule["alert"], name)
    queries = D.panel_queries(rate_interval="5m")
    assert len(queries) >= 20
    empty = []
    for title, expr in queries:
        for name in D.metric_names(expr):
            assert name in exposed | recorded | D.SYNTHETIC, f"panel {title!r}: {name} is not exported"
            assert name in scraped | recorded, f"panel {title!r}: Prometheus has no {name}"
        try:
            prom.wait_for(expr, lambda v: v is not None, timeout=30)
        except TimeoutError:
            empty.append((title, expr))
    assert not empty, f"queries that return nothing: {empty}"


def test_rules_evaluate_cleanly_on_real_data_and_only_the_privacy_alert_fires(stack: Stack):
    prom = stack.prom
    deadline = time.monotonic() + 60
    while True:
        rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
        if all(r["health"] != "unknown" for r in rules) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(rules) == len(D.rules())
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
    # one input carried an identity number: that alert fires (the counter was exported at 0
    # before, so increase() sees the very first one); nothing else does
    deadline = time.monotonic() + 30
    while True:
        firing = [(a["labels"]["alertname"], a["labels"].get("stream"))
                  for a in prom.api("alerts")["alerts"] if a["state"] == "firing"]
        if firing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert firing == [("CheckpointRawIdentityNumbers", "station")]
    # the SLO ratio is computed from real observations (a number, not NaN/absent)
    ratio = prom.wait_for("checkpoint:e2e_latency_slo_errors:ratio_rate5m",
                          lambda v: v is not None and v == v, timeout=30)
    assert ratio is not None and 0 <= ratio <= 1


# ------------------------------------------------------------------ health, logs
def test_health_and_readiness_endpoints(stack: Stack):
    status, body = stack.worker.get("/health")
    assert (status, body) == (200, {"status": "ok"})
    status, body = stack.worker.get("/ready")
    assert status == 200 and body["ready"] is True and body["partitions"] == [0, 1, 2, 3]
    assert body["register_areas"] >= 1
    # while starting, /ready answered 503 + ready: false until the register caught up, then 200
    statuses = [s for s, _ in stack.ready_log]
    assert statuses[-1] == 200
    for status, body in stack.ready_log:
        assert (status == 200) == body["ready"]
        assert status in (200, 503)
    assert statuses == sorted(statuses, key=lambda s: s == 200), "readiness went back to 503"
    print(f"\n/ready while starting: {statuses.count(503)} x 503 then 200")
    assert stack.prom.value(metric("checkpoint_register_ready")) == 1
    (target,) = stack.prom.api("targets")["activeTargets"]
    assert target["health"] == "up" and target["lastError"] == ""


def test_logs_are_json_lines_with_input_ids_and_no_identity_number(stack: Stack):
    text = Path(stack.worker.log_path).read_text()
    assert ID_NUMBER not in text and ID_NUMBER.lower() not in text
    events = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    ours = [e for e in events if e["logger"] == "checkpoint_streams"]
    changes = [e for e in ours if e["msg"] == "code change" and e["input_id"] != "rs-obs-1"]
    assert sorted(e["input_id"] for e in changes) == sorted(r["value"]["id"] for r in stack.pushed["red"])
    assert all(e["rule"] == RULE and e["to"] == "red" and e["output_id"].startswith("cc-") for e in changes)
    letters = [e for e in ours if e["msg"] == "dead letter"]
    assert sorted(e["reason"] for e in letters) == ["raw_identity_number", "schema_violation"]
    # the identity check runs on the raw bytes before parsing (so the number is never
    # parsed, kept or logged): no input id then, but where the message is
    for letter in letters:
        assert letter["topic"] == stack.topic("checkpoint.scans.station")
        assert isinstance(letter["partition"], int) and isinstance(letter["offset"], int)
    alerts = [e for e in ours if e["msg"] == "alert"]
    assert [(e["kind"], e["severity"], e["input_id"]) for e in alerts] == [("positive_result", "page", "rs-obs-1")]
    assert any(e["msg"] == "register ready" for e in ours)
    # everything logged through logging is JSON: Faust's and aiokafka's lines too
    assert {"faust.worker", "checkpoint_streams"} <= {e["logger"] for e in events}


def test_promtool_check_metrics_passes_for_every_checkpoint_series(stack: Stack, promtool: str):
    """Issue 16.11: the project's own series follow Prometheus' naming rules (promtool's
    linter); Faust's and the runtime's names are upstream's, listed in docs/observability.md."""
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.worker.port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    ours = [line for line in problems if line.startswith("checkpoint_")]
    assert ours == [], ours
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert {f for f in families if f.startswith("checkpoint_")}, families
    upstream = sorted(f for f in families if f.startswith("faust_") and not f.endswith("_created"))
    doc = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()
    missing = [f for f in upstream if f"`{f}`" not in doc]
    assert missing == [], missing
    others = sorted(f for f in families
                    if not f.startswith(("checkpoint_", "faust_", "process_", "python_")))
    assert others == [], others
