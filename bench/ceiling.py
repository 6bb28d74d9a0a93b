"""The ceiling: a bare aiokafka consume -> orjson decode -> produce loop with no logic.

Same input topics and partitions as the workers, same consumer group protocol, the
producer settings of the worker (acks=all, linger 0, `CHECKPOINT_PRODUCER_BATCH_BYTES`
batches, the cached murmur2 partitioner), at-least-once like
the worker (outputs acknowledged before the offsets are committed). One output per
input on the code-changes topic, so the benchmark measures it exactly as it measures
the pipeline. Run as its own process:

    python -m bench.ceiling --broker 127.0.0.1:42092 --prefix t1234. --group g --expect 20000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.runtime.changelog import partitioner
from streams.settings import settings

INPUTS = ("checkpoint.scans.station", "checkpoint.scans.highway", "checkpoint.risk-areas",
          "checkpoint.pcr-results", "checkpoint.contact-notices", "checkpoint.operator-commands")
OUTPUT = "checkpoint.code-changes"


async def bare_loop(broker: str, prefix: str, group: str, expect: int,
                    idle_seconds: float = 10.0) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        *(prefix + t for t in INPUTS), bootstrap_servers=broker, group_id=group,
        enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=1500,
        heartbeat_interval_ms=1000, session_timeout_ms=10_000)
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=0,
                                max_batch_size=settings().producer_batch_bytes,
                                partitioner=partitioner)
    await producer.start()
    await consumer.start()
    seen = 0
    first = last = cpu_first = 0.0
    idle_since = time.monotonic()
    try:
        while seen < expect and time.monotonic() - idle_since < idle_seconds:
            batches = await consumer.getmany(timeout_ms=500)
            if not batches:
                continue
            idle_since = time.monotonic()
            if not first:
                first, cpu_first = time.time(), time.process_time()
            pending = []
            for messages in batches.values():
                for message in messages:
                    value = orjson.loads(message.value)
                    pending.append(await producer.send(prefix + OUTPUT, orjson.dumps(value),
                                                       key=message.key))
                    seen += 1
            await asyncio.gather(*pending)
            await consumer.commit()
            last = time.time()
    finally:
        await consumer.stop()
        await producer.stop()
    return {"records": seen, "first": first, "last": last,
            "cpu_seconds": time.process_time() - cpu_first,
            "records_per_second": seen / (last - first) if last > first else None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--group", required=True)
    parser.add_argument("--expect", type=int, required=True, help="stop after this many records")
    args = parser.parse_args(argv)
    result = asyncio.run(bare_loop(args.broker, args.prefix, args.group, args.expect))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
