"""Topic creation and a plain producer, with kafka-python (no Faust needed).

Topics are created explicitly before any worker starts, with the partition counts and
configs the AsyncAPI document states: Faust refuses to start when a table's changelog and
its source topics disagree on partition counts, and the broker does not auto-create.
Faust's own topics (the tables' changelogs, the leader topic) are in the document too and
are created here the same way; Faust finds them and does not declare them again, so the
broker holds exactly the document's topics and a worker needs no right to create any.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import suppress
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from . import contracts, security


class BrokerUnreachable(RuntimeError):
    pass


def admin_client(bootstrap: str, timeout: float = 10.0) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="checkpoint-admin",
                                request_timeout_ms=int(timeout * 1000),
                                **security.from_env().kafka_python())
    except KafkaTimeoutError:
        raise BrokerUnreachable(f"no Kafka broker answers at {bootstrap}") from None


def create_topics(bootstrap: str, partitions: int | None = None,
                  prefix: str | None = None) -> list[str]:
    """Create every topic of the contract that does not exist yet; returns the new ones.
    `prefix`: the deployment's namespace prefix (default: $CHECKPOINT_NAMESPACE's).
    `partitions`: another partition count for the partitioned topics (the person-keyed
    ones, their tables' changelogs and the rest of more than one partition); the
    single-partition ones (policies, Faust's leader topic) keep theirs."""
    if prefix is None:
        from .settings import Settings

        prefix = Settings.from_env().topic_prefix
    admin = admin_client(bootstrap)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name=prefix + spec.name,
                     num_partitions=partitions if partitions and spec.partitions > 1 else spec.partitions,
                     replication_factor=spec.replicas, topic_configs=dict(spec.config))
            for spec in contracts.topics().values() if prefix + spec.name not in existing
        ]
        created = []
        for topic in wanted:  # one at a time: a race with another creator is not an error
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


def delete_namespace(bootstrap: str, prefix: str, attempts: int = 5) -> list[str]:
    """Delete every topic whose name starts with `prefix` (a namespace's contract topics and its workers'
    changelogs); returns those still there after `attempts` tries (the broker may refuse a
    topic that is still being created, so each try deletes topic by topic)."""
    admin = admin_client(bootstrap)
    try:
        for attempt in range(attempts):
            left = [t for t in admin.list_topics() if t.startswith(prefix)]
            if not left or attempt == attempts - 1:
                return left
            for topic in left:
                with suppress(KafkaError):  # tried again on the next pass
                    admin.delete_topics([topic], timeout_ms=30_000)
            time.sleep(1.0)
        return left
    finally:
        admin.close()


def producer(bootstrap: str) -> KafkaProducer:
    try:
        return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                             retries=5, max_in_flight_requests_per_connection=1,
                             max_block_ms=10_000, **security.from_env().kafka_python())
    except KafkaTimeoutError:
        raise BrokerUnreachable(f"no Kafka broker answers at {bootstrap}") from None


def produce_records(bootstrap: str, records: Iterable[dict[str, Any]], *,
                    rate: float | None = None, prefix: str = "") -> Iterator[int]:
    """Send `{"topic", "key", "value"}` records in order; yields a running count.

    Values are sent as given (orjson-encoded) so that bad records reach the workers'
    dead-letter path exactly as a faulty scanner's would. `prefix`: a deployment's
    namespace prefix for the recording's topic names.
    """
    sender = producer(bootstrap)
    interval = 1.0 / rate if rate else 0.0
    started = time.monotonic()
    try:
        for count, record in enumerate(records, start=1):
            key = record.get("key")
            value = record["value"]
            raw = value if isinstance(value, bytes) else orjson.dumps(value)
            sender.send(prefix + record["topic"], key=key.encode() if isinstance(key, str) else key,
                        value=raw)
            if interval:
                delay = started + count * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield count
        sender.flush()
    finally:
        sender.close()
