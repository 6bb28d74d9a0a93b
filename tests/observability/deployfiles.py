"""The deployment files under test, and a small PromQL reader for their queries."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.integration.harness import REPO

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "checkpoint.rules.yml"
RULE_TESTS = PROMETHEUS_DIR / "tests" / "checkpoint.rules.test.yml"
GRAFANA_DIR = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "checkpoint-streams.json"
COMPOSE = REPO / "docker-compose.yml"
RUNBOOK = REPO / "docs" / "runbook.md"

#: series Prometheus makes itself rather than scraping them
SYNTHETIC = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped"}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
             "unless", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, labels and keywords removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    text = re.sub(r"\{[^}]*\}", "", text)                      # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                     # range / subquery windows
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = re.findall(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?!\s*\(|[\w:])", text)
    return {name for name in names if name.lower() not in _KEYWORDS}


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    out = []
    for panel in dashboard()["panels"]:
        out.extend(panel.get("panels", []) if panel["type"] == "row" else [panel])
    return out


def panel_queries(rate_interval: str = "5m") -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target, Grafana's $__rate_interval made concrete."""
    return [(panel["title"], target["expr"].replace("$__rate_interval", rate_interval))
            for panel in panels() for target in panel.get("targets", [])]


def exposition_names(text: str) -> set[str]:
    """Series names in a Prometheus text exposition (what a worker really exports)."""
    return {re.split(r"[{\s]", line, maxsplit=1)[0]
            for line in text.splitlines() if line and not line.startswith("#")}


def compose_config(docker_compose: str, *extra: str) -> dict[str, Any]:
    import subprocess

    done = subprocess.run([docker_compose, "-f", str(COMPOSE), *extra, "config"], cwd=REPO,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def runbook_anchors() -> set[str]:
    """GitHub-style anchors of the runbook's headings."""
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def load_path(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
