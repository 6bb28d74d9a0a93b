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
    return {"CHECKPOINT_BROKER": ns.bootstrap, "CHECKPOINT_NAMESPACE": ns.namespace}


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


# ------------------------------------------------ C8: a published policy takes over live
WIRED = "apply_publication" in (Path(__file__).resolve().parents[2] / "streams" / "app.py").read_text()


def _scan(scan_id: str, person: str, at: int) -> dict:
    from streams.engine.timeutil import format_date, format_ts, local_day

    return {"topic": "checkpoint.scans.station", "key": person, "value": {
        "id": scan_id, "person": person, "event_time": format_ts(at),
        "checkpoint": {"id": "TY-SOUTH", "kind": "station", "area": "140105"},
        "travel": [{"area": "610113", "date": format_date(local_day(at) - 1)}]}}


def _wait_for(read, predicate, timeout: float = 60.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in read() if predicate(r)]
        if found:
            return found
        time.sleep(1.0)
    raise AssertionError("not seen in time")


@pytest.mark.skipif(not WIRED, reason="streams/app.py does not consume checkpoint.policies yet")
def test_a_published_policy_takes_over_at_its_valid_from_without_restart(ns, tmp_path):
    """Given a worker on the wall clock and a medium-risk Xi'an, When a stricter Taiyuan
    policy is published to start in a few seconds, Then a scan before that instant is
    decided by the old policy and a scan after it by the new one, and the in-force metric
    names the new policy, all without a restart."""
    import time
    import urllib.request

    from streams.engine.timeutil import format_ts

    now = int(time.time() * 1000)
    switch = now + 20_000
    text = STRICTER_MEDIUM.read_text(encoding="utf-8")
    policy = tmp_path / "taiyuan-live-switch.yaml"
    policy.write_text(text.replace("id: taiyuan-2022-09-01", "id: taiyuan-live-switch")
                      .replace('valid_from: "2022-09-01T00:00:00+08:00"', f'valid_from: "{format_ts(switch)}"'),
                      encoding="utf-8")
    worker = Worker(ns, tmp_path, clock="wall").start()
    try:
        ns.produce([{"topic": "checkpoint.risk-areas", "key": "610113", "value": {
            "id": "ra-610113-live", "area": "610113", "level": "medium",
            "effective_at": format_ts(now - 3 * 86_400_000), "event_time": format_ts(now - 3 * 86_400_000)}}])
        published = cli("policy", "publish", policy, "--by", "test", env=env_of(ns))
        assert published.returncode == 0, published.stderr
        ns.produce([_scan("st-live-before", "live-before-switch", int(time.time() * 1000))])

        def changes():
            return [r["value"] for r in ns.read(["checkpoint.code-changes"])]

        (before,) = _wait_for(changes, lambda v: v["person"] == "live-before-switch")
        assert (before["policy"]["id"], before["to"]) == ("taiyuan-2022-08-20", "yellow")
        time.sleep(max(0.0, (switch - time.time() * 1000) / 1000) + 1)
        ns.produce([_scan("st-live-after", "live-after-switch", int(time.time() * 1000))])
        (after,) = _wait_for(changes, lambda v: v["person"] == "live-after-switch")
        assert (after["policy"]["id"], after["rule"], after["to"]) == (
            "taiyuan-live-switch", "TY0901-R3-medium", "red")

        def metric():
            with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=5) as response:
                return [line for line in response.read().decode().splitlines()
                        if line.startswith("checkpoint_policy_in_force_info") and 'jurisdiction="1401"' in line]

        lines = _wait_for(metric, lambda line: 'policy="taiyuan-live-switch"' in line and line.endswith(" 1.0"))
        assert lines
    finally:
        worker.stop()
