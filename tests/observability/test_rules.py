"""Alert and recording rules: promtool checks and unit tests, and what the rules may name."""

from __future__ import annotations

import re
import subprocess

from prometheus_client import Counter, Gauge, Histogram

from streams import metrics
from tests.integration.harness import REPO
from tests.observability import deployfiles as D

#: the alerts issue 8 asks for, by what they watch
REQUIRED_ALERTS = {
    "latency objective burn": {"CheckpointLatencyBudgetFastBurn", "CheckpointLatencyBudgetSlowBurn"},
    "overdue releases": {"CheckpointReleasesOverdue", "CheckpointReleaseTimerStalled"},
    "dead-letter rate": {"CheckpointDeadLetterRateHigh"},
    "inputs failing in the engine": {"CheckpointProcessingErrors"},
    "consumer lag growth": {"CheckpointConsumerLagGrowing"},
    "worker down": {"CheckpointWorkerDown", "CheckpointNoWorkers"},
}
#: labels a project metric may carry: all bounded (never a person, scan id or area code)
BOUNDED_LABELS = {"stream", "outcome", "status", "topic", "partition", "reason", "kind",
                  "from_colour", "to_colour", "rule", "severity", "colour", "cause",
                  "jurisdiction", "policy", "version"}


def project_metrics() -> list[Counter | Gauge | Histogram]:
    return [value for value in vars(metrics).values() if isinstance(value, (Counter, Gauge, Histogram))]


def test_promtool_check_config_and_rules(promtool):
    for config in ("prometheus.yml", "prometheus.local.yml"):
        done = subprocess.run([promtool, "check", "config", config], cwd=D.PROMETHEUS_DIR,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 rule files found" in done.stdout
    done = subprocess.run([promtool, "check", "rules", str(D.RULES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_rule_unit_tests(promtool):
    done = subprocess.run([promtool, "test", "rules", D.RULE_TESTS.name],
                          cwd=D.RULE_TESTS.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_unit_tested_and_has_a_runbook_entry():
    tested = set(re.findall(r"alertname:\s*(\w+)", D.RULE_TESTS.read_text()))
    anchors = D.runbook_anchors()
    names = {rule["alert"] for rule in D.alerts()}
    for needed in REQUIRED_ALERTS.values():
        assert needed <= names
    for rule in D.alerts():
        assert rule["alert"] in tested, f"{rule['alert']} has no promtool test"
        assert rule["labels"]["severity"] in ("page", "ticket")
        for key in ("summary", "description", "runbook_url"):
            assert rule["annotations"].get(key), (rule["alert"], key)
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/runbook.md#{rule['alert'].lower()}", url
        assert url.split("#")[1] in anchors, f"docs/runbook.md has no section {rule['alert']}"


def test_rules_name_only_metrics_the_worker_defines():
    """Static half of the check (the live half: test_live_scrape): every metric a rule
    reads is a project metric, a Faust sensor metric, a process metric or Prometheus's own."""
    exported = set()
    for metric in project_metrics():
        for family in metric.describe():
            base = family.name
            exported |= {base, f"{base}_total", f"{base}_bucket", f"{base}_count", f"{base}_sum"}
    recorded = D.recorded_names()
    for rule in D.rules():
        for name in D.metric_names(rule["expr"]):
            assert (name in exported or name in recorded or name in D.SYNTHETIC
                    or name.startswith(("faust_", "process_"))), (rule.get("alert") or rule["record"], name)


def test_project_metrics_follow_prometheus_conventions():
    for metric in project_metrics():
        (family,) = metric.describe()
        name = family.name
        assert name.startswith("checkpoint_"), name
        labels = set(metric._labelnames)
        assert labels <= BOUNDED_LABELS, (name, labels - BOUNDED_LABELS)
        if isinstance(metric, Histogram):
            assert name.endswith("_seconds"), f"{name}: histograms here measure time, in seconds"
        if isinstance(metric, Counter):
            # prometheus_client adds _total to the exposed sample; the family name must not end in a unit-less plural
            assert not name.endswith("_total"), name
        if isinstance(metric, Gauge) and "timestamp" in name:
            assert name.endswith("_timestamp_seconds"), name
    # the SLO rules read the 5 s bucket: it must exist
    assert 5.0 in metrics.LATENCY_BUCKETS


def test_rules_files_are_the_ones_both_configs_load():
    for config in ("prometheus.yml", "prometheus.local.yml"):
        doc = D.load_path(D.PROMETHEUS_DIR / config)
        assert doc["rule_files"] == ["rules/*.yml"]
        jobs = [job["job_name"] for job in doc["scrape_configs"]]
        assert "checkpoint-worker" in jobs
    assert sorted(p.name for p in (D.PROMETHEUS_DIR / "rules").glob("*.yml")) == ["checkpoint.rules.yml"]
    assert (REPO / "docs" / "observability.md").exists()
