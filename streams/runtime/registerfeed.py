"""The register, the exposed trips and the published policies, read whole by every worker.

Not a GlobalTable: faust-streaming's GlobalTable may stop updating across several
worker instances (faust-streaming #283). A plain consumer with no group reads every
partition of the compacted topics from the beginning, hands each record to its handler
and follows the topics; `ready` is set once it has caught up with the end offsets it
found at start, and the worker decides nothing before that (a scan judged against half
a register would be judged wrongly). Partitions of the register learn each change in
order from their own internal topic as well (`streams.pipeline`), so the feed's own
pace never changes a decision.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

log = logging.getLogger("checkpoint_streams")

#: (topic name, key, value) of one record
Handler = Callable[[bytes | None, bytes | None], None]


#: how long missing topics are looked for again before the worker gives up (seconds)
TOPICS_GRACE = 15.0


class RegisterFeed:
    def __init__(self, bootstrap: str, handlers: Mapping[str, Handler],
                 client_options: Mapping[str, Any], on_batch: Callable[[], None] | None = None) -> None:
        self.bootstrap = bootstrap
        self.handlers = dict(handlers)
        self.client_options = dict(client_options)
        self.on_batch = on_batch
        self.ready = asyncio.Event()

    async def run(self, should_stop: Callable[[], bool]) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None,
                                    **self.client_options)
        await consumer.start()
        try:
            # aiokafka's public topics() does not keep the metadata it fetched; ask the client.
            # Topics created a moment ago (a deployment's first start, `make run`) may reach
            # this broker's metadata a little later: look again for a while before failing.
            deadline = time.monotonic() + TOPICS_GRACE
            while True:
                cluster = await consumer._client.fetch_all_metadata()
                missing = [t for t in self.handlers if not cluster.partitions_for_topic(t)]
                if not missing or time.monotonic() >= deadline or should_stop():
                    break
                await asyncio.sleep(0.5)
            if missing:
                raise RuntimeError(f"topics {', '.join(missing)} are missing: create them first "
                                   "(checkpoint-streams topics)")
            parts = [TopicPartition(topic, p) for topic in self.handlers
                     for p in sorted(cluster.partitions_for_topic(topic) or ())]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            end = await consumer.end_offsets(parts)
            while not should_stop():
                batch = await consumer.getmany(timeout_ms=200, max_records=2000)
                for tp, messages in batch.items():
                    handle = self.handlers[tp.topic]
                    for message in messages:
                        handle(message.key, message.value)
                if not self.ready.is_set():
                    positions = {tp: await consumer.position(tp) for tp in parts}
                    if all(positions[tp] >= end[tp] for tp in parts):
                        self.ready.set()
                if self.on_batch is not None:
                    self.on_batch()
        finally:
            await consumer.stop()
