"""The consumer-lag sampler against the real broker: end offset - committed offset."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.types import TP
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from yarl import URL

from streams import metrics
from streams.observability import LagSampler
from tests.integration.harness import Namespace


def fake_app(ns: Namespace, group: str, owned: set[TP]) -> SimpleNamespace:
    """What the sampler reads from a Faust app: group id, brokers, active assignment."""
    return SimpleNamespace(
        conf=SimpleNamespace(id=group, broker=[URL(f"kafka://{ns.bootstrap}")]),
        assignor=SimpleNamespace(assigned_actives=lambda: owned))


def gauge(topic: str, partition: int) -> float | None:
    (family,) = metrics.CONSUMER_LAG.collect()
    return next((s.value for s in family.samples
                 if s.labels == {"topic": topic, "partition": str(partition)}), None)


@pytest.mark.integration
def test_lag_is_end_minus_committed_for_owned_partitions(broker):
    ns = Namespace(broker)
    station = ns.topic("checkpoint.scans.station")
    group = ns.app_id
    ns.produce({"topic": "checkpoint.scans.station", "key": f"person-{i:05d}", "value": {"n": i}}
               for i in range(40))
    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=group, enable_auto_commit=False)
    try:
        parts = [TopicPartition(station, p) for p in range(4)]
        ends = consumer.end_offsets(parts)
        assert sum(ends.values()) == 40 and ends[parts[0]] >= 3
        # the group committed 3 messages short on partition 0, everything on 1, nothing on 2, 3
        consumer.commit({parts[0]: OffsetAndMetadata(ends[parts[0]] - 3, "", -1),
                         parts[1]: OffsetAndMetadata(ends[parts[1]], "", -1)})
    finally:
        consumer.close()

    owned = {TP(station, p) for p in range(4)} | {
        TP(f"{group}-persons-changelog", 0), TP(f"{group}-__assignor-__leader", 0)}
    sampler = LagSampler(fake_app(ns, group, owned))

    async def run(sampler: LagSampler) -> dict[tuple[str, int], int]:
        try:
            return await sampler.sample()
        finally:
            await sampler.close()

    lags = asyncio.run(run(sampler))
    assert lags == {(station, 0): 3, (station, 1): 0,                      # changelogs and the
                    (station, 2): ends[parts[2]], (station, 3): ends[parts[3]]}  # assignor: not lag
    assert gauge(station, 0) == 3 and gauge(station, 2) == ends[parts[2]]

    # after a rebalance takes partitions away, their series go away too
    sampler.app = fake_app(ns, group, {TP(station, 0)})
    assert asyncio.run(run(sampler)) == {(station, 0): 3}
    assert gauge(station, 0) == 3 and gauge(station, 2) is None


def test_a_failing_sample_counts_an_error_and_keeps_going():
    app = SimpleNamespace(conf=SimpleNamespace(id="g", broker=[URL("kafka://127.0.0.1:1")]),
                          assignor=SimpleNamespace(assigned_actives=lambda: {TP("t", 0)}))
    sampler = LagSampler(app)
    before = metrics.LAG_SAMPLE_ERRORS._value.get()
    asyncio.run(sampler.tick())
    assert metrics.LAG_SAMPLE_ERRORS._value.get() == before + 1
    assert sampler.failing and sampler.admin is None
