"""Every workaround for a faust-streaming behaviour the worker depends on, in one place.

Each module names what it works around and the upstream issue where one exists, and
tests/unit/test_runtime_pins.py fails when a faust-streaming (or mode, aiokafka) upgrade
changes the internals it relies on:

- `producer`: the producer lookup that costs three event-loop trips per send;
- `consumer`: the four tasks Faust makes per consumed message, and its fetch sizes;
- `store`: a RocksDB store that writes where the key's partition says;
- `changelog`: table rows written with their changelog records sent by the worker;
- `delivery`: inputs acknowledged only once everything that follows is on the broker,
  unit after unit (on the stream clock, each topic partition's in offset order);
- `registerfeed`: the register read whole by every worker (not a GlobalTable, #283);
- `duetimes`: due times derived from states (not windowed tables, #385, #193);
- `alignment`: the stream clock (event-time order across topics and partitions);
- `refetch`: each record handed to the agent once, in offset order, and what the
  consumer fetched but Faust never handed over read again.
"""

from __future__ import annotations

from typing import Any

from . import consumer, producer, store


def install(app: Any, fetch_min_bytes: int = 1, fetch_max_wait_ms: int = 1500) -> None:
    """Apply the patches to this process and app (once, before the worker starts)."""
    producer.install(app)
    consumer.install(fetch_min_bytes, fetch_max_wait_ms)
    store.install()
