"""The Faust app: its configuration, its topics and its tables.

Agents, timers and web views are in their own modules (`streams.agents`,
`streams.timers`, `streams.views`), found by Faust's autodiscovery when the worker
starts; what they do with an input is the pipeline core's (`streams.pipeline`), driven
through the live shell (`streams.live`). Settings are read and checked once
(`streams.settings`); a bad one stops the worker with one line.
"""

from __future__ import annotations

import logging

import faust

from . import observability, runtime, security
from . import topics as T
from .collector import collect_rarely
from .live import Live
from .runtime.changelog import partitioner
from .settings import Settings

settings = Settings.from_env()
settings.data_dir.mkdir(parents=True, exist_ok=True)

app = faust.App(
    settings.app_id,
    broker=f"kafka://{settings.broker}",
    store=settings.store,
    datadir=str(settings.data_dir),
    web_bind=settings.web_bind,
    web_host=settings.web_host,
    web_port=settings.web_port,
    topic_partitions=settings.partitions,
    topic_replication_factor=1,
    broker_heartbeat_interval=1.0,
    broker_commit_interval=settings.commit_interval,
    broker_session_timeout=10.0,
    consumer_auto_offset_reset="earliest",
    key_serializer="raw",
    value_serializer="raw",
    processing_guarantee="at_least_once",
    # inputs are acknowledged only once delivered (streams.runtime.delivery): waiting for
    # them on a rebalance is the shell's job (Live.revoked), not Faust's
    stream_wait_empty=False,
    producer_max_batch_size=settings.producer_batch_bytes,
    producer_partitioner=partitioner,  # murmur2 cached: aiokafka's is pure Python (10 µs a key)
    autodiscover=["streams.agents", "streams.timers", "streams.views"],
    origin="streams.app",
    **security.from_env().faust(),  # TLS / SASL from CHECKPOINT_SECURITY_* (default plaintext)
)
runtime.install(app, settings.fetch_min_bytes, settings.fetch_max_wait_ms)
collect_rarely(settings.gc_threshold)  # see streams.collector
# Every output gets a log line; the JSON lines use none of the record's caller, thread or
# process fields, which `logging` otherwise looks up for each record (the logging HOWTO's
# "Optimization" knobs): about 5 µs a line.
logging._srcfile = None
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False


def topic(name: str) -> faust.TopicT:
    return app.topic(settings.topic(name), key_type=bytes, value_type=bytes,
                     key_serializer="raw", value_serializer="raw")


#: partition p of every input topic and of the internal person-work topic is partition
#: p's (co-partitioned: one worker owns partition p of all of them)
partition_inputs = app.topic(*(settings.topic(name) for name in T.PARTITION_TOPICS),
                             key_type=bytes, value_type=bytes, key_serializer="raw",
                             value_serializer="raw")
report_parts = topic(T.REPORT_PARTS)

# Table keys are the raw UTF-8 bytes of the person (key_type=bytes: raw serializer), exactly
# the bytes of the input topics' keys; partition rows (a partition's daily counts) name
# their partition (streams.runtime.changelog).
# With rocksdb:// both tables' partitions share one memory budget (streams.runtime.store).
rocksdb = {"memory_bytes": settings.rocksdb_memory_bytes}
persons = app.Table("persons", key_type=bytes, value_type=bytes,
                    partitions=settings.partitions, use_partitioner=True, options=rocksdb)
# area:date -> {"parts": {partition: counts}}: what the report of that area and day sums
report_counts = app.Table("report-counts", key_type=bytes, value_type=bytes,
                          partitions=settings.partitions, use_partitioner=True, options=rocksdb)

live = Live(app, settings, persons)
observability.install(app)


def main() -> None:  # pragma: no cover - exercised through the CLI
    app.main()
