"""`checkpoint-streams lag` on the real broker: committed offsets against end offsets,
per group, topic and partition, with exactly the numbers Kafka holds."""

from __future__ import annotations

import json
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from tests.cli.conftest import cli, one_line_error
from tests.integration.harness import Namespace

pytestmark = pytest.mark.integration

#: records put on each (topic, partition)
SENT = {("checkpoint.scans.station", 0): 7, ("checkpoint.scans.station", 1): 5,
        ("checkpoint.scans.station", 3): 3, ("checkpoint.scans.highway", 0): 2}


def send(ns: Namespace) -> None:
    producer = KafkaProducer(bootstrap_servers=ns.bootstrap, acks="all")
    try:
        for (topic, partition), count in SENT.items():
            for n in range(count):
                producer.send(ns.topic(topic), key=f"lag-{partition}-{n}".encode(),
                              value=b"{}", partition=partition)
        producer.flush()
    finally:
        producer.close()


def commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                         for (t, p), o in offsets.items()})
    finally:
        consumer.close()


def test_lag_per_group_topic_and_partition(ns):
    send(ns)
    station, highway = ns.topic("checkpoint.scans.station"), ns.topic("checkpoint.scans.highway")
    # the deployment's group: 3 behind on station 0, done on station 1, committed at 0 on
    # highway 0; never committed on station 2 (empty) and station 3 (3 records)
    commit(ns.bootstrap, ns.app_id, {(station, 0): 4, (station, 1): 5, (highway, 0): 0})
    foreign = f"foreign-{uuid.uuid4().hex[:8]}"
    commit(ns.bootstrap, foreign, {(station, 0): 6})
    env = {"CHECKPOINT_BROKER": ns.bootstrap, "CHECKPOINT_NAMESPACE": ns.namespace}

    done = cli("lag", "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["broker"] == ns.bootstrap
    (group,) = report["groups"]
    assert (group["group"], group["state"], group["members"]) == (ns.app_id, "Empty", 0)
    rows = {(r["topic"], r["partition"]): (r["committed"], r["end"], r["lag"])
            for r in group["partitions"]}
    # every partition of every topic the workers consume, as Kafka holds it
    consumed = ["checkpoint.scans.station", "checkpoint.scans.highway", "checkpoint.risk-areas",
                "checkpoint.pcr-results", "checkpoint.contact-notices",
                "checkpoint.operator-commands", "checkpoint.internal.person-work",
                "checkpoint.internal.report-parts"]
    assert set(rows) == {(ns.topic(t), p) for t in consumed for p in range(4)}
    assert rows[(station, 0)] == (4, 7, 3)
    assert rows[(station, 1)] == (5, 5, 0)
    assert rows[(station, 2)] == (None, 0, 0)
    assert rows[(station, 3)] == (None, 3, 3)      # never committed: the whole partition
    assert rows[(highway, 0)] == (0, 2, 2)
    assert {v for k, v in rows.items() if k[0] not in (station, highway) or k == (highway, 1)} \
        == {(None, 0, 0)}
    assert group["lag"] == 3 + 0 + 0 + 3 + 2

    # another group by name: the partitions it committed, nothing else
    done = cli("lag", "--group", foreign, "--group", ns.app_id, "--json", env=env)
    assert done.returncode == 0, done.stderr
    first, second = json.loads(done.stdout)["groups"]
    assert first == {"group": foreign, "state": "Empty", "members": 0, "lag": 1, "partitions": [
        {"topic": station, "partition": 0, "committed": 6, "end": 7, "lag": 1}]}
    assert second["group"] == ns.app_id and second["lag"] == 8

    everything = json.loads(cli("lag", "--all-groups", "--json", env=env).stdout)["groups"]
    assert {foreign, ns.app_id} <= {g["group"] for g in everything}

    table = cli("lag", env=env)
    assert table.returncode == 0, table.stderr
    assert f"{ns.app_id}  Empty, 0 members, lag 8" in table.stdout
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in table.stdout.splitlines()
             if line.startswith("│")]
    assert [station, "0", "4", "7", "3"] in cells and [station, "3", "—", "3", "3"] in cells


def test_lag_of_a_group_the_broker_does_not_know(broker):
    missing = f"nobody-{uuid.uuid4().hex[:8]}"
    done = cli("lag", "--group", missing, env={"CHECKPOINT_BROKER": broker})
    assert done.returncode == 3
    assert one_line_error(done) == f"error: no consumer group {missing} at {broker}"
    usage = cli("lag", "--group", missing, "--all-groups", env={"CHECKPOINT_BROKER": broker})
    assert usage.returncode == 2
    bad = cli("lag", env={"CHECKPOINT_BROKER": broker, "CHECKPOINT_SECURITY_PROTOCOL": "SASL_SSL"})
    assert bad.returncode == 1
    assert "CHECKPOINT_SASL_USERNAME" in one_line_error(bad)  # the security settings apply
