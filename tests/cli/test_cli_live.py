"""The commands that talk to Kafka and to live workers, on the real local broker.

Marked `integration` (the broker is started by the `broker` fixture unless it runs
already); every test works in its own topic prefix, so they share the broker safely.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.recording import read_jsonl
from tests.cli.conftest import SCENARIOS, STRICTER_MEDIUM, cli, one_line_error
from tests.integration.harness import Namespace, Worker

pytestmark = pytest.mark.integration


@pytest.fixture
def ns(broker: str) -> Namespace:
    return Namespace(broker)


def env_of(ns: Namespace) -> dict[str, str]:
    return {"CHECKPOINT_BROKER": ns.bootstrap, "CHECKPOINT_TOPIC_PREFIX": ns.prefix}


def test_publish_then_list_what_is_published(ns):
    env = env_of(ns)
    done = cli("policy", "publish", STRICTER_MEDIUM, "--by", "operator-0042", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"published taiyuan-2022-09-01 v1 to {ns.prefix}checkpoint.policies")
    again = cli("policy", "publish", STRICTER_MEDIUM, "--json", env=env)
    assert json.loads(again.stdout)["offset"] == 1
    listed = cli("policy", "list", "--published", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)  # the latest publication of each policy id
    assert (row["id"], row["version"], row["offset"]) == ("taiyuan-2022-09-01", 1, 1)
    assert row["state"] == "effective"  # 2022-09-01 has passed
    text = cli("policy", "list", "--published", "--at", "2022-08-30T00:00:00+08:00", env=env).stdout
    assert "taiyuan-2022-09-01 v1  jurisdiction 1401  from 2022-09-01T00:00:00+08:00  [scheduled]" in text


def test_topics_creates_the_policies_topic_too(ns):
    from kafka import KafkaConsumer

    done = cli("topics", env=env_of(ns))  # the namespace made them already: nothing new
    assert done.returncode == 0 and done.stdout.strip() == "created 0 topics"
    consumer = KafkaConsumer(bootstrap_servers=ns.bootstrap)
    try:
        assert consumer.partitions_for_topic(ns.topic("checkpoint.policies")) == {0}
    finally:
        consumer.close()


@pytest.fixture
def taiyuan_worker(ns: Namespace, tmp_path: Path) -> Iterator[Worker]:
    worker = Worker(ns, tmp_path).start()
    try:
        ns.feed(read_jsonl(SCENARIOS / "taiyuan-0820.jsonl"))
        yield worker
    finally:
        worker.stop()


def test_status_and_areas_from_a_live_worker(taiyuan_worker):
    url = f"http://127.0.0.1:{taiyuan_worker.port}"
    done = cli("status", "ty-medium-traveller", "--worker", url, "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert (status["code"], status["source"]) == ("yellow", url)
    assert status["controls"][0]["rule"] == "TY0820-R3-medium"
    assert status["controls"][0]["due"] == "2022-08-28T13:00:00+08:00"
    assert status["history"][0]["caused_by"] == ["st-ty0820-3", "ra-610113-0815"]
    table = cli("status", "ty-medium-traveller", "--worker", url)
    assert "TY0820-R3-medium" in table.stdout and "test schedule" in table.stdout
    missing = cli("status", "nobody-at-all", "--worker", url)
    assert missing.returncode == 3 and "no person nobody-at-all" in one_line_error(missing)
    areas = json.loads(cli("areas", "--worker", url, "--json").stdout)
    assert {(a["area"], a["level"]) for a in areas["areas"]} == {("460204", "high"), ("610113", "medium")}
