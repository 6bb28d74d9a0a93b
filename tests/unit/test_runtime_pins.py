"""Pins on the faust-streaming, mode and aiokafka internals that streams/runtime relies on.

Each workaround in `streams.runtime` leans on an internal that no release promises to
keep. These tests fail on an upgrade that changes one, so that the workaround is looked
at again instead of silently doing nothing (or something else). Each names the module
of ours that depends on it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import defaultdict
from types import SimpleNamespace

import faust
from intervaltree import IntervalTree
from mode import Service
from mode.utils.futures import stampede

from streams.runtime import consumer, producer, store


def test_the_producer_lookup_is_a_stampede_descriptor_an_instance_attribute_overrides():
    """streams.runtime.producer: `App.maybe_start_producer` is mode's `stampede`, a
    non-data descriptor, so the app instance's own attribute takes precedence."""
    descriptor = vars(faust.App)["maybe_start_producer"]
    assert isinstance(descriptor, stampede)
    assert not hasattr(type(descriptor), "__set__")
    app = faust.App("pin-producer", broker="kafka://127.0.0.1:1")
    producer.install(app)
    assert app.maybe_start_producer is app.__dict__["maybe_start_producer"]


def test_the_fetch_loop_delivers_through_wait_first_which_returns_wait_results():
    """streams.runtime.consumer: `_drain_messages` calls `self.wait_first(...)` per message,
    and `Service.wait_first` returns `WaitResults(done, results, stopped)`."""
    from faust.transport.drivers.aiokafka import Consumer

    assert "self.wait_first(" in inspect.getsource(Consumer._drain_messages)
    assert consumer._original_wait_first is Service.wait_first

    class Probe(Service):
        pass

    async def run() -> None:
        service = Probe()

        async def quick() -> int:
            return 7

        results = await consumer.eager_wait_first(service, quick(), asyncio.sleep(10))
        assert (results.results, results.stopped) == ([7], False)
        original = await Service.wait_first(service, quick(), timeout=1)
        assert (original.results, original.stopped) == ([7], False)

    asyncio.run(run())


def test_the_rocksdb_store_files_writes_through_set_key_index_and_db_for_partition():
    """streams.runtime.store: Faust's `_set` writes under the current event's partition via
    `_db_for_partition` and `_key_index`; ours replaces `_set` and keeps those two."""
    from faust.stores.rocksdb import Store

    source = inspect.getsource(Store._set)
    assert "_db_for_partition(" in source and "_key_index[" in source
    assert "current_event()" in source  # what we work around
    assert hasattr(Store, "set_persisted_offset")
    assert store.Store._set is not Store._set
    store.install()
    from faust.stores import STORES

    assert STORES.aliases["rocksdb"] == "streams.runtime.store:Store"


def test_the_rocksdb_store_builds_its_options_from_the_table_options_in_init():
    """streams.runtime.store: Faust's `Store.__init__` makes `rocksdb_options` from the
    table's `options` and opens every partition's database through `as_options()`; ours
    replaces the options after it, so the databases share one memory budget."""
    from faust.stores.rocksdb import RocksDBOptions, Store

    init = inspect.getsource(Store.__init__)
    assert "self.rocksdb_options = RocksDBOptions(" in init and "**self.options" in init
    assert "self.as_options()" in inspect.getsource(RocksDBOptions.open)
    assert "set_block_based_table_factory" in inspect.getsource(RocksDBOptions.as_options)


def test_the_worker_consumer_is_made_in_one_method_and_builds_its_fetcher_from_two_attributes():
    """streams.runtime.consumer.fetch_sizes: Faust makes the worker's consumer in
    `AIOKafkaConsumerThread._create_worker_consumer` (with no fetch_min_bytes), and
    aiokafka builds the `Fetcher` in `start()` from `_fetch_min_bytes` and
    `_fetch_max_wait_ms`; ours sets the two before it starts."""
    from aiokafka import AIOKafkaConsumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    made = inspect.getsource(AIOKafkaConsumerThread._create_worker_consumer)
    assert "aiokafka.AIOKafkaConsumer(" in made and "fetch_min_bytes" not in made
    start = inspect.getsource(AIOKafkaConsumer.start)
    assert "fetch_min_bytes=self._fetch_min_bytes" in start
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in start

    async def made_and_sized() -> None:
        plain = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
        assert (plain._fetch_min_bytes, plain._fetch_max_wait_ms) == (1, 500)
        sized = consumer.fetch_sizes(plain, 65_536, 10)
        assert (sized._fetch_min_bytes, sized._fetch_max_wait_ms) == (65_536, 10)

    asyncio.run(made_and_sized())


def test_install_sizes_every_worker_consumer_faust_makes(monkeypatch):
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    class Made:
        _fetch_min_bytes, _fetch_max_wait_ms = 1, 1500

    monkeypatch.setattr(AIOKafkaConsumerThread, "_create_worker_consumer",
                        lambda self, transport: Made())
    monkeypatch.setattr(consumer, "_original_create", {})
    consumer.install(4096, 7)
    made = AIOKafkaConsumerThread._create_worker_consumer(object(), None)
    assert (made._fetch_min_bytes, made._fetch_max_wait_ms) == (4096, 7)


def test_streams_can_take_events_without_acknowledging_them():
    """streams.runtime.delivery: `Stream.noack_take(max_, within)` exists (the agent takes
    its batches unacknowledged and acknowledges each event once it is delivered)."""
    from faust.streams import Stream

    parameters = list(inspect.signature(Stream.noack_take).parameters)
    assert parameters[:3] == ["self", "max_", "within"]


def test_faust_commits_acknowledged_offsets_only_up_to_the_first_gap():
    """streams.runtime.delivery: an unacknowledged input holds back the commit of every
    later offset of its partition (the consumer's `_new_offset`)."""
    from faust.transport.consumer import Consumer

    tp = ("t", 0)
    fake = SimpleNamespace(_acked={tp: [5, 6, 7, 9, 10]}, _gap=defaultdict(IntervalTree),
                           _committed_offset={tp: 4}, _acked_index={tp: {5, 6, 7, 9, 10}})
    assert Consumer._new_offset(fake, tp) == 8  # 8 not acknowledged: 9 and 10 wait
    fake._acked[tp].append(8)
    fake._committed_offset[tp] = 7
    assert Consumer._new_offset(fake, tp) == 11


def test_faust_commits_past_a_head_gap_of_one_offset_and_past_any_once_it_forgot_the_committed():
    """streams.runtime.delivery: the committed offset is the next to read, and `_new_offset`
    only refuses when the lowest acknowledged offset lies more than one past it, or not at
    all after a revocation; so the committer acknowledges units in the order decided.
    When this test fails Faust checks the head itself and that ordering may go."""
    from faust.transport.consumer import Consumer

    tp = ("t", 0)
    fake = SimpleNamespace(_acked={tp: [11, 12]}, _gap=defaultdict(IntervalTree),
                           _committed_offset={tp: 10}, _acked_index={tp: {11, 12}})
    assert Consumer._new_offset(fake, tp) == 13  # offset 10 was never acknowledged
    fake = SimpleNamespace(_acked={tp: [9, 10]}, _gap=defaultdict(IntervalTree),
                           _committed_offset=defaultdict(lambda: None), _acked_index={tp: {9, 10}})
    assert Consumer._new_offset(fake, tp) == 11



def test_the_refetch_reads_the_fetchers_positions_and_buffers_and_seeks_through_faust():
    """streams.runtime.refetch (read by `Live.refetch_lost`): aiokafka keeps each assigned
    partition's position in `_subscription.subscription.assignment.state_value(tp)` and
    the records it fetched in `_fetcher._records`; Faust's `Consumer.seek` moves the
    fetcher and its own read offset; the agent's queue is its channel's `queue`. And the
    reason it exists: Faust's `getmany` still breaks off a fetched batch when the flow
    stops or the generation changes, and a rebalance that needs no recovery still resumes
    the flow before it resumes and seeks the stream partitions (in `on_recovery_completed`,
    after the tables' callbacks)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.consumer.fetcher import Fetcher
    from aiokafka.consumer.subscription_state import SubscriptionState, TopicPartitionState
    from faust.channels import Channel
    from faust.tables.recovery import Recovery
    from faust.transport.consumer import Consumer as FaustConsumer

    async def positions() -> None:
        subscription = SubscriptionState()
        subscription.assign_from_user({TopicPartition("t", 2)})
        assignment = subscription.subscription.assignment
        assert {tp.partition for tp in assignment.tps} == {2}
        state = assignment.state_value(TopicPartition("t", 2))
        assert isinstance(state, TopicPartitionState)
        assert state.has_valid_position is False
        state.seek(15)
        assert (state.has_valid_position, state.position) == (True, 15)

    asyncio.run(positions())
    assert "self._records = " in inspect.getsource(Fetcher.__init__)
    assert "self._subscription = " in inspect.getsource(AIOKafkaConsumer.__init__)
    assert "self._read_offset[ensure_TP(partition)]" in inspect.getsource(FaustConsumer.seek)
    assert isinstance(vars(Channel)["queue"], property)
    getmany = inspect.getsource(FaustConsumer.getmany)
    assert "if not self.flow_active:" in getmany and "break" in getmany
    restart = inspect.getsource(Recovery._restart_recovery.fun)
    resumed = restart.rindex('self.log.info("Resuming flow...")')
    assert resumed < restart.index("self.on_recovery_completed")
    completed = inspect.getsource(Recovery.on_recovery_completed)
    assert completed.index("consumer.resume_partitions(") < completed.index("consumer.perform_seek()")


def test_batches_use_aiokafkas_batch_interface_and_the_producers_own_partitioner():
    """streams.runtime.batches: Faust's producer hands out its aiokafka producer
    (`_ensure_producer`); aiokafka's `create_batch`/`send_batch(batch, topic, *,
    partition)`, `client._wait_on_metadata(topic)` and `_partition(topic, partition, key,
    value, serialized_key, serialized_value)`, which calls the configured partitioner; a
    batch is queued only after the partition's previous one drained (order per partition)."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.producer.message_accumulator import MessageAccumulator
    from faust.transport.drivers.aiokafka import Producer

    assert "def _ensure_producer(self)" in inspect.getsource(Producer)
    assert list(inspect.signature(AIOKafkaProducer.send_batch).parameters) == [
        "self", "batch", "topic", "partition"]
    assert inspect.signature(AIOKafkaProducer.send_batch).parameters["partition"].kind \
        is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(AIOKafkaProducer._partition).parameters) == [
        "self", "topic", "partition", "key", "value", "serialized_key", "serialized_value"]
    assert "self._partitioner(" in inspect.getsource(AIOKafkaProducer._partition)
    assert "wait_drain(" in inspect.getsource(MessageAccumulator.add_batch)
    from aiokafka.client import AIOKafkaClient

    assert inspect.iscoroutinefunction(AIOKafkaClient._wait_on_metadata)
