"""The AsyncAPI document lists every topic a deployment has on the broker.

Faust names and reads topics of its own (the tables' changelogs, the leader topic); the
contract lists them like every other topic, and `checkpoint-streams topics`
(`streams.admin.create_topics`, what `Namespace` runs) creates them before a worker
starts. This test runs workers against topics made that way and compares the broker with
the document afterwards: nothing missing, nothing extra, every topic as the document
configures it, and Faust declared none of its own again.
"""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from streams import contracts
from streams.engine.timeutil import local_day
from tests.integration.harness import last_values
from tests.integration.test_live_behaviour import now_ms, scan

pytestmark = pytest.mark.integration

PERSONS = ("topics-traveller-01", "topics-traveller-02", "topics-traveller-03")


def _configs(admin: KafkaAdminClient, topics: list[str]) -> dict[str, dict[str, str]]:
    """topic -> {config: value} as the broker states them (kafka-python 3.0's shape:
    {"topic": {topic: {config: {"value": ...}}}})."""
    answer = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    return {topic: {name: str(entry["value"]) for name, entry in configs.items()}
            for topic, configs in answer["topic"].items()}


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def _keys(bootstrap: str, topic: str) -> set[bytes | None]:
    return set(last_values(bootstrap, topic))


def test_the_broker_holds_exactly_the_topics_of_the_asyncapi_document(ns, workers, broker):
    """Given a namespace whose topics were created from the contract (Faust's own included),
    When a worker decides a few scans and stops, and a second worker with an empty store
    starts and recovers the persons table from its changelog, Then it serves every person
    the first decided; and the broker's topics with the namespace's prefix are exactly the
    AsyncAPI document's channels with that prefix (nothing missing, nothing extra, no other
    topic named after the namespace), each with the document's partition count and topic
    configuration; Faust created none of them (its log says so, and the configs only
    `create_topics` sets are there); the persons changelog holds the persons, the leader
    topic nothing, and the one consumer group is the app id."""
    started = time.monotonic()
    specs = contracts.topics()
    expected = {ns.topic(name) for name in specs}
    assert {ns.topic(name) for name, spec in specs.items() if spec.managed_by == "faust"} == {
        f"{ns.app_id}-persons-changelog", f"{ns.app_id}-report-counts-changelog",
        f"{ns.app_id}-__assignor-__leader"}

    first = workers(name="w1", clock="wall")
    now = now_ms()
    ns.produce([scan(person, now - 60_000 + i, "140105", [("540102", local_day(now) - 1)],
                     f"st-topics-{i}") for i, person in enumerate(PERSONS)])
    ns.wait_idle()
    decided = {person: first.get(f"/persons/{person}") for person in PERSONS}
    assert all(status == 200 for status, _ in decided.values()), decided
    first.stop()

    second = workers(name="w2", clock="wall")  # its own (empty) data dir: recovers from the changelog
    for person in PERSONS:
        status, body = second.get(f"/persons/{person}")
        assert status == 200 and body["colour"] == decided[person][1]["colour"], (person, body)
    second.stop()
    print(f"\nlive run (two workers, {len(PERSONS)} scans): {time.monotonic() - started:.1f} s")

    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        on_broker = set(admin.list_topics())
        ours = {topic for topic in on_broker if topic.startswith(ns.prefix)}
        assert not expected - ours, f"in the document, not on the broker: {sorted(expected - ours)}"
        assert not ours - expected, f"on the broker, not in the document: {sorted(ours - expected)}"
        assert {topic for topic in on_broker if ns.namespace in topic} == expected

        described = {d["name"]: len(d["partitions"]) for d in admin.describe_topics(sorted(expected))}
        configs = _configs(admin, sorted(expected))
        for name, spec in specs.items():
            topic = ns.topic(name)
            assert described[topic] == spec.partitions, topic
            assert {k: configs[topic].get(k) for k in spec.config} == spec.config, topic

        groups = {g["group_id"] for g in admin.list_groups()}
        assert {g for g in groups if ns.namespace in g} == {ns.app_id}
    finally:
        admin.close()

    for worker in (first, second):  # Faust found its topics and declared none of them
        log = worker.log_path.read_text(errors="replace")
        assert "' created." not in log, [line for line in log.splitlines() if "' created." in line]
    persons = _keys(ns.bootstrap, f"{ns.app_id}-persons-changelog")
    assert {p.encode() for p in PERSONS} <= persons
    assert _end_offsets(ns.bootstrap, f"{ns.app_id}-__assignor-__leader") == {0: 0}
