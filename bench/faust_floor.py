"""The Faust floor: bare Faust agents over the same topics, with no logic.

What a Faust worker costs before it decides anything. One agent per input topic, with
the worker's own Faust settings, the same hot-path fixes (`streams.faustperf`) and the
same batching (`take_events`), in one of two modes:

- ``consume``: decode each message with orjson, nothing else;
- ``table``: also, per message, one output through the app's producer (as the worker
  sends a code change) and one row of a changelogged Table, written the way the worker
  saves a person's state (`streams.changelog.ChangelogWriter`: the store, and the
  changelog record through the producer): the Kafka work a scan costs the pipeline.

Run as its own worker process; it prints one JSON line when it has seen ``--expect``
messages: records, the span from the first to the last message processed, CPU seconds.

    python -m bench.faust_floor --broker 127.0.0.1:42092 --prefix t1234. --group g \\
        --expect 20000 --mode table
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from typing import Any

INPUTS = ("checkpoint.scans.station", "checkpoint.scans.highway", "checkpoint.risk-areas",
          "checkpoint.pcr-results", "checkpoint.contact-notices", "checkpoint.operator-commands")
OUTPUT = "checkpoint.code-changes"


def build(broker: str, prefix: str, group: str, expect: int, mode: str, port: int) -> Any:
    import faust
    import orjson

    from streams import runtime
    from streams.runtime.changelog import ChangelogWriter, partitioner
    from streams.settings import settings

    app = faust.App(
        group, broker=f"kafka://{broker}", store="memory://", topic_partitions=4,
        topic_replication_factor=1, broker_heartbeat_interval=1.0, broker_session_timeout=10.0,
        consumer_auto_offset_reset="earliest", key_serializer="raw", value_serializer="raw",
        processing_guarantee="at_least_once", autodiscover=False, stream_wait_empty=False,
        producer_max_batch_size=settings().producer_batch_bytes, producer_partitioner=partitioner,
        web_port=port, web_host="127.0.0.1", datadir=tempfile.mkdtemp(prefix="cs-floor-"))
    runtime.producer.install(app)
    runtime.consumer.install(settings().fetch_min_bytes, settings().fetch_max_wait_ms)
    table = app.Table("floor", key_type=bytes, value_type=bytes, partitions=4,
                      use_partitioner=True)
    writer = ChangelogWriter(app, table)
    output = prefix + OUTPUT
    seen = {"n": 0, "first": 0.0, "cpu": 0.0}

    async def consume(stream: Any) -> None:
        async for events in stream.take_events(500, within=0.01):
            if not seen["first"]:
                seen["first"], seen["cpu"] = time.time(), time.process_time()
            pending = []
            rows = []
            producer = await app.maybe_start_producer() if mode == "table" else None
            for event in events:
                value = orjson.loads(event.message.value)
                if producer is not None:
                    pending.append(await producer.send(output, event.message.key,
                                                       orjson.dumps(value), None, None, None))
                    rows.append((event.message.key or b"", event.message.value))
            if pending:
                await asyncio.gather(*pending)
                await asyncio.gather(*await writer.write(rows))  # after the outputs, as the worker does
            seen["n"] += len(events)
            if seen["n"] >= expect:
                span = time.time() - seen["first"]
                # to the real stdout: Faust's worker routes sys.stdout into its logs
                os.write(1, orjson.dumps({
                    "records": seen["n"], "seconds": span,
                    "records_per_second": seen["n"] / span if span > 0 else None,
                    "cpu_seconds": time.process_time() - seen["cpu"]}) + b"\n")
                os._exit(0)

    for number, name in enumerate(INPUTS):
        topic = app.topic(prefix + name, key_type=bytes, value_type=bytes,
                          key_serializer="raw", value_serializer="raw")
        app.agent(topic, name=f"floor-{number}")(consume)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--group", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--mode", choices=["consume", "table"], default="table")
    parser.add_argument("--web-port", type=int, default=6199)
    args = parser.parse_args(argv)
    app = build(args.broker, args.prefix, args.group, args.expect, args.mode, args.web_port)
    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn", "--web-port", str(args.web_port)]
    app.main()


if __name__ == "__main__":
    main()
