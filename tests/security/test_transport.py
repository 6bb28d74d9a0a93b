"""Transport security against the real broker: SASL_SSL (SCRAM-SHA-512 over TLS) and ACLs.

Given a broker that only speaks SASL_SSL with a certificate from a CA made in the test,
and ACLs that give the worker exactly what the AsyncAPI document says it does (Read on
each topic it receives, Write on each it sends, Faust's changelogs and leader topic
included, and its consumer group) and the scanner nothing but "write scans",
When a worker connects with the worker's credentials and a scanner produces scans,
Then code changes come out and nothing the worker asked for was denied; and the
scanner's credentials can neither read an output, nor write any other topic, nor join a
consumer group.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import KafkaError

from streams import contracts, security
from streams.admin import create_topics
from tests.integration.harness import Namespace, Worker
from tests.security.conftest import SecureBroker

SCAN = {"id": "st-sec-1", "person": "person-sec-0001", "event_time": "2022-08-21T10:00:00+08:00",
        "checkpoint": {"id": "TY-SOUTH", "kind": "station", "area": "140105"},
        "travel": [{"area": "540102", "date": "2022-08-19"}]}


def _clients(broker: SecureBroker, user: str, password: str | None = None) -> dict[str, Any]:
    env = broker.client_env(user)
    if password is not None:
        env["CHECKPOINT_SASL_PASSWORD"] = password
    return {"bootstrap_servers": broker.bootstrap, **security.from_env(env).kafka_python()}


def _allow(principal: str, kind: ResourceType, name: str, *operations: ACLOperation,
           pattern_type: ACLResourcePatternType = ACLResourcePatternType.PREFIXED) -> list[ACL]:
    pattern = ResourcePattern(kind, name, pattern_type)
    return [ACL(f"User:{principal}", "*", op, ACLPermissionType.ALLOW, pattern) for op in operations]


#: what a worker's operation on a channel needs (Read and Write imply Describe)
_OPERATION = {"receive": ACLOperation.READ, "send": ACLOperation.WRITE}


def worker_acls(ns: Namespace, principal: str = "worker") -> list[ACL]:
    """The worker's ACLs, from the AsyncAPI document alone: on each topic (the exact name
    in the namespace) Read if the workers receive it, Write if they send it, Faust's own
    topics included; Create on Faust's own topics only (Faust declares them at every start
    and the broker checks the right before it answers that they exist); Read on the
    consumer group, the app id. Nothing by prefix: every topic is made beforehand
    (`create_topics`, as the admin)."""
    document = contracts.load_asyncapi()
    addresses = {f"#/channels/{cid}": channel["address"] for cid, channel in document["channels"].items()}
    wanted: dict[str, set[ACLOperation]] = {}
    for operation in document["operations"].values():
        topic = ns.topic(addresses[operation["channel"]["$ref"]])
        wanted.setdefault(topic, set()).add(_OPERATION[operation["action"]])
    assert set(wanted) == {ns.topic(name) for name in contracts.topics()}, "a topic no one uses"
    for name, spec in contracts.topics().items():
        if spec.managed_by == "faust":
            wanted[ns.topic(name)].add(ACLOperation.CREATE)
    literal = ACLResourcePatternType.LITERAL
    acls = [acl for topic, operations in sorted(wanted.items())
            for acl in _allow(principal, ResourceType.TOPIC, topic, *sorted(operations, key=int),
                              pattern_type=literal)]
    return acls + _allow(principal, ResourceType.GROUP, ns.app_id, ACLOperation.READ, pattern_type=literal)


@pytest.fixture
def secured(secure_broker: SecureBroker, monkeypatch: pytest.MonkeyPatch) -> Namespace:
    """This test's topics (created as the admin) and the ACLs of its principals."""
    for name, value in secure_broker.client_env("admin").items():
        monkeypatch.setenv(name, value)  # streams.admin reads the same variables
    ns = Namespace.__new__(Namespace)
    tag = f"sec{int(time.time() * 1000) % 10**8}"
    ns.bootstrap, ns.namespace = secure_broker.bootstrap, f"t{tag}"
    ns.prefix, ns.app_id = f"{ns.namespace}.", f"{ns.namespace}.checkpoint-streams"
    create_topics(ns.bootstrap, prefix=ns.prefix)
    admin = KafkaAdminClient(**_clients(secure_broker, "admin"))
    try:
        acls = [
            # the worker: what the contract says it receives and sends, and its group
            *worker_acls(ns),
            # the scanner: write (and look up) scan topics, nothing else
            *_allow("scanner", ResourceType.TOPIC, ns.prefix + "checkpoint.scans.",
                    ACLOperation.WRITE, ACLOperation.DESCRIBE),
        ]
        result = admin.create_acls(acls)
        assert not result["failed"], result["failed"]
        # ACLs take effect when the broker applies the metadata record: wait until they show
        everything = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                               ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
        deadline = time.monotonic() + 20
        while True:
            found, _ = admin.describe_acls(everything)
            names = {acl.resource_pattern.resource_name for acl in found}
            if {acl.resource_pattern.resource_name for acl in acls} <= names:
                break
            assert time.monotonic() < deadline, "ACLs not applied"
            time.sleep(0.2)
        time.sleep(0.5)  # describe and authorize read one metadata image; leave it a moment
    finally:
        admin.close()
    return ns


def _produce(broker: SecureBroker, user: str, topic: str, value: dict[str, Any]) -> None:
    producer = KafkaProducer(**_clients(broker, user), acks="all", max_block_ms=8_000,
                             request_timeout_ms=10_000, retries=0, enable_idempotence=False)
    try:
        producer.send(topic, key=value["person"].encode(), value=orjson.dumps(value)).get(timeout=20)
    finally:
        producer.close(timeout=5)


def _read(broker: SecureBroker, user: str, topic: str, timeout_ms: int = 3000) -> list[Any]:
    """Every message of `topic` (partitions assigned, no group); errors are raised."""
    consumer = KafkaConsumer(**_clients(broker, user), enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list[Any] = []
        deadline = time.monotonic() + timeout_ms / 1000
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                out.extend(orjson.loads(m.value) for m in records)
        return out
    finally:
        consumer.close()


def test_a_worker_over_sasl_ssl_turns_a_scanners_scan_into_a_code_change(
        secure_broker: SecureBroker, secured: Namespace, tmp_path: Path):
    worker = Worker(secured, tmp_path, clock="stream",
                    env={**secure_broker.client_env("worker"), "CHECKPOINT_LAG_INTERVAL": "1"}).start()
    try:
        _produce(secure_broker, "scanner", secured.topic("checkpoint.scans.station"), SCAN)
        deadline = time.monotonic() + 60
        events: list[Any] = []
        while not events and time.monotonic() < deadline:
            events = _read(secure_broker, "admin", secured.topic("checkpoint.code-changes"), 1500)
        assert [(e["person"], e["kind"], e["to"]) for e in events] == [("person-sec-0001", "assign", "red")]
        assert worker.get("/persons/person-sec-0001")[0] == 200  # stored: the changelog written
        time.sleep(2.5)  # lag samples (group offsets, end offsets) after the decision
        log = worker.log_path.read_text()
        assert secure_broker.passwords["worker"] not in log  # never logged
        denied = [line for line in log.splitlines()
                  if "uthoriz" in line or "lag sampling failed" in line]
        assert not denied, denied[:5]  # the document's ACLs are all the worker needs
        with urllib.request.urlopen(worker.url + "/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        station = secured.topic("checkpoint.scans.station")
        assert f'checkpoint_consumer_lag_messages{{partition="0",topic="{station}"}}' in metrics
        assert "checkpoint_consumer_lag_sample_errors_total 0.0" in metrics
    finally:
        worker.stop()


def test_the_scanner_can_only_produce_scans(secure_broker: SecureBroker, secured: Namespace):
    _produce(secure_broker, "scanner", secured.topic("checkpoint.scans.highway"),
             {**SCAN, "id": "hw-sec-1", "checkpoint": {**SCAN["checkpoint"], "kind": "highway"}})
    for topic in ("checkpoint.code-changes", "checkpoint.risk-areas", "checkpoint.operator-commands",
                  "checkpoint.dead-letters"):
        with pytest.raises(KafkaError) as denied:  # forging outputs, the register or commands
            _produce(secure_broker, "scanner", secured.topic(topic), SCAN)
        assert "Authorization" in type(denied.value).__name__, denied.value
    for topic in ("checkpoint.code-changes", "checkpoint.scans.station"):  # reading anything
        _produce(secure_broker, "admin", secured.topic(topic), {**SCAN, "id": f"x-{topic}"})
        assert _read(secure_broker, "admin", secured.topic(topic))  # there is something to read
        try:
            leaked = _read(secure_broker, "scanner", secured.topic(topic))
        except KafkaError as denied:
            assert "Authorization" in type(denied).__name__, denied
        else:
            assert leaked == [], f"the scanner read {topic}"
    consumer = KafkaConsumer(secured.topic("checkpoint.scans.station"), group_id=secured.app_id,
                             **_clients(secure_broker, "scanner"))
    try:  # nor join the workers' consumer group (it would steal their partitions)
        got: dict[Any, Any] = {}
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            try:
                got.update(consumer.poll(timeout_ms=500))
            except KafkaError as exc:
                assert "Authorization" in type(exc).__name__, exc
                break
        assert not got and not consumer.assignment()
    finally:
        consumer.close()


def test_wrong_password_and_plaintext_are_refused(secure_broker: SecureBroker, secured: Namespace):
    """The broker says why (its log), the client only sees that it cannot connect."""
    topic = secured.topic("checkpoint.scans.station")
    attempts = {
        "invalid credentials": _clients(secure_broker, "scanner", password="not-the-password-1"),
        "SSL handshake failed": {"bootstrap_servers": secure_broker.bootstrap},  # no TLS at all
    }
    for reason, settings in attempts.items():
        before = secure_broker.log.read_text(errors="replace").count(reason)
        with pytest.raises(KafkaError):
            KafkaProducer(**settings, max_block_ms=5000, bootstrap_timeout_ms=5000).partitions_for(topic)
        assert secure_broker.log.read_text(errors="replace").count(reason) > before, reason


def test_the_readme_gives_the_worker_the_acls_of_the_document():
    """deploy/README.md's commands for the worker's ACLs (no namespace) are exactly what
    `worker_acls` derives from schemas/asyncapi.yaml (no broker needed)."""
    ns = Namespace.__new__(Namespace)
    ns.prefix, ns.app_id = "", "checkpoint-streams"
    expected = {(acl.resource_pattern.resource_type.name, acl.resource_pattern.resource_name,
                 acl.operation.name) for acl in worker_acls(ns)}
    readme = (Path(__file__).resolve().parents[2] / "deploy" / "README.md").read_text(encoding="utf-8")
    block = readme.split("acl() {", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    found = set()
    for line in block.splitlines()[1:]:
        words = line.split()
        if not words or words[0] != "acl":
            continue
        operations = [words[i + 1].upper() for i, word in enumerate(words) if word == "--operation"]
        for i, word in enumerate(words):
            if word in ("--topic", "--group"):
                found |= {(word[2:].upper(), words[i + 1], op) for op in operations}
    assert found == expected
