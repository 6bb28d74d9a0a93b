"""docker-compose.yml, Dockerfile and Grafana provisioning, checked offline.

There is no Docker engine in CI: Debian's docker-compose (1.29) validates the compose
file (`docker-compose config` rejects unknown options and bad types without a daemon),
and the rest is checked against the files and the code they must agree with.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.integration.harness import REPO
from tests.observability import deployfiles as D

SETTINGS_ENV = set(re.findall(r'"(CHECKPOINT_[A-Z_]+)"', (REPO / "streams" / "settings.py").read_text()))
#: read outside settings.py: topic prefix (streams/topics.py), lag interval (observability)
OTHER_ENV = {"CHECKPOINT_LAG_INTERVAL"}
CHECKPOINT_IMAGE_SERVICES = ("topics", "worker", "loadgen")


@pytest.fixture(scope="module")
def compose(docker_compose):
    return D.compose_config(docker_compose, "--profile", "load")


def test_docker_compose_config_is_valid(docker_compose):
    done = subprocess.run([docker_compose, "-f", str(D.COMPOSE), "config", "-q"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_docker_compose_config_rejects_a_broken_file(docker_compose, tmp_path):
    """The validator is not a rubber stamp: an unknown option in a service fails it."""
    broken = yaml.safe_load(D.COMPOSE.read_text())
    broken["services"]["worker"]["replica_count"] = 3
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    shutil.copy(REPO / "Dockerfile", tmp_path / "Dockerfile")
    done = subprocess.run([docker_compose, "-f", str(path), "config", "-q"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert "replica_count" in done.stderr


def test_services_and_images(compose):
    services = compose["services"]
    assert set(services) == {"kafka", "topics", "worker", "prometheus", "grafana", "loadgen"}
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"          # KRaft, single node
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"          # as deploy/broker.sh
    assert str(env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"]) == "0"
    assert "127.0.0.1:9092:9092" in str(services["kafka"]["ports"][0]) or \
        services["kafka"]["ports"][0]["published"] in (9092, "9092")
    for name in CHECKPOINT_IMAGE_SERVICES:
        assert services[name]["build"]["context"] == str(REPO)
        assert services[name]["image"].startswith("checkpoint-streams:")
    assert services["loadgen"]["profiles"] == ["load"]              # optional


def test_commands_are_the_local_ones(compose):
    services = compose["services"]
    assert services["topics"]["command"] == ["checkpoint-streams", "topics"]
    assert services["worker"]["command"][:2] == ["checkpoint-streams", "worker"]
    assert services["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    # every option the compose file passes exists in the CLI it calls
    for name in ("worker",):
        command = services[name]["command"]
        help_text = subprocess.run([sys.executable, "-m", "streams.cli", *command[1:2], "--help"],
                                   cwd=REPO, capture_output=True, text=True, check=True).stdout
        for option in (arg for arg in command[2:] if arg.startswith("--")):
            assert option in help_text, (name, option)
    load = services["loadgen"]["command"]
    assert load[:3] == ["python", "-m", "streams.load"]
    help_text = subprocess.run([sys.executable, *load[1:3], "--help"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout
    for option in (arg for arg in load[3:] if arg.startswith("--")):
        assert option in help_text, ("loadgen", option)


def test_environment_names_are_the_settings_names(compose):
    for name in CHECKPOINT_IMAGE_SERVICES:
        env = compose["services"][name]["environment"]
        names = {key for key in env if key.startswith("CHECKPOINT_")}
        assert names <= SETTINGS_ENV | OTHER_ENV, names - SETTINGS_ENV - OTHER_ENV
        assert env["CHECKPOINT_BROKER"] == "kafka:19092"
    worker = compose["services"]["worker"]["environment"]
    # listen on the container's interfaces, advertise its own host name (not 0.0.0.0)
    assert worker["CHECKPOINT_WEB_BIND"] == "0.0.0.0" and "CHECKPOINT_WEB_HOST" not in worker
    assert worker["CHECKPOINT_CLOCK"] == "wall"
    # Prometheus finds the replicas by DNS on the worker's web port
    prometheus = D.load_path(D.PROMETHEUS_DIR / "prometheus.yml")
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "checkpoint-worker"]
    assert job["dns_sd_configs"][0]["names"] == ["worker"]
    assert str(job["dns_sd_configs"][0]["port"]) == worker["CHECKPOINT_WEB_PORT"] == "6066"


def test_workers_scale(compose):
    worker = compose["services"]["worker"]
    assert "container_name" not in worker                       # --scale needs generated names
    assert not worker.get("ports"), "a published host port would collide across replicas"
    assert "6066" in [str(p) for p in worker.get("expose", [])]
    assert "ready" in " ".join(worker["healthcheck"]["test"])


def test_prometheus_and_grafana_are_provisioned_from_the_repo(compose):
    services = compose["services"]
    volumes = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert volumes["/etc/prometheus"] == str(D.PROMETHEUS_DIR)
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    volumes = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert volumes["/etc/grafana/provisioning"] == str(D.GRAFANA_DIR / "provisioning")
    dashboards_dir = "/var/lib/grafana/dashboards"
    assert volumes[dashboards_dir] == str(D.GRAFANA_DIR / "dashboards")
    provider = D.load_path(D.GRAFANA_DIR / "provisioning" / "dashboards" / "checkpoint-streams.yml")
    assert provider["providers"][0]["options"]["path"] == dashboards_dir
    (source,) = D.load_path(D.GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    for panel in D.panels():
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"], panel["title"]


def test_dashboard_shows_what_issue_8_asks_for():
    queries = " ".join(q for _, q in D.panel_queries())
    for metric in ("checkpoint:e2e_latency_slo_errors", "checkpoint_inputs_total",       # objective, throughput
                   "checkpoint_code_changes_total", "checkpoint_dead_letters_total",     # colours, dead letters
                   "checkpoint_consumer_lag_messages", "checkpoint_pending_releases",    # lag, releases
                   "checkpoint_overdue_releases"):
        assert metric in queries, metric
    ids = [panel["id"] for panel in D.dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in D.panels():                                    # no overlapping panels
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]


def test_dockerfile_installs_the_project_and_copies_only_existing_paths():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert "pip install -e '.[rocksdb]'" in text  # RocksDB, the production store (issue 16)
    assert "CHECKPOINT_STORE=rocksdb://" in text and "VOLUME /var/lib/checkpoint-streams" in text
    assert re.search(r'^CMD \["checkpoint-streams", "worker"\]$', text, re.M)
    allowed = [line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.startswith("!")]
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        for source in line.split()[:-1]:
            if "[" in source:  # an optional file (a pattern may match nothing)
                assert source.replace("[", "").replace("]", "") in allowed, source
                continue
            assert source in allowed, f"{source} is excluded by .dockerignore"
            assert (REPO / source).exists(), source
