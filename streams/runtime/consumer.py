"""Faust hot-path fixes: four asyncio tasks per consumed message, and a fetch per record.

The tasks: the consumer's fetch loop (`faust.transport.drivers.aiokafka.Consumer._drain_messages`,
faust-streaming 0.15) hands every message to the conductor inside
`self.wait_first(callback(message), self.suspend_flow.wait())`, so that a rebalance can
interrupt a delivery that blocks on a full stream buffer. mode's `wait_first` wraps each
argument, plus the service's stopped and crashed events, in a Task, waits for the first,
and cancels the rest: four tasks created and three cancelled per message, although the
delivery almost never blocks. `eager_wait_first` first runs the delivery coroutine up to
its first suspension, in place; when it completes without suspending (the conductor put
the message into a buffer with room), that is the outcome `wait_first` would have
returned, and no task was needed. When it does suspend, the rest of it runs as a task
raced against the other arguments by the original `wait_first`, exactly as before. A
bare Faust agent consuming the scan topics went from about 5,500 to about 9,100
messages/s with it (bench `faust floor`).

The fetches: see `fetch_sizes`.

Upstream: no issue tracks either (see docs/architecture.md, "Faust workarounds"); the
behaviour they rely on is pinned by tests/unit/test_runtime_pins.py, which fails when an
upgrade changes `_drain_messages`, `Service.wait_first`, `_create_worker_consumer` or how
aiokafka's consumer builds its fetcher.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator
from typing import Any

from mode import Service
from mode.services import WaitResults

_original_wait_first = Service.wait_first


def install(fetch_min_bytes: int = 1, fetch_max_wait_ms: int = 1500) -> None:
    """Give Faust's aiokafka consumer the eager `wait_first` and the fetch sizes
    (process-wide; see `fetch_sizes`)."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer

    Consumer.wait_first = eager_wait_first  # type: ignore[method-assign]
    create = _original_create.setdefault("create", AIOKafkaConsumerThread._create_worker_consumer)

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        return fetch_sizes(create(self, transport), fetch_min_bytes, fetch_max_wait_ms)

    AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]


_original_create: dict[str, Any] = {}


def fetch_sizes(consumer: Any, min_bytes: int, max_wait_ms: int) -> Any:
    """Let the broker hold a fetch until `min_bytes` are there or `max_wait_ms` passed.

    Faust makes its consumer with aiokafka's `fetch_min_bytes=1` and offers no setting:
    each fetch returns as soon as any record is there. Draining a backlog that is one
    fetch per many records; at a steady rate it is a fetch per record or two, each one
    paid for in the consumer thread (request, response decoding, a hand-over to the
    agent's loop) and again as a batch of one in the agent. Set before the consumer
    starts: its `Fetcher` is built in `start()` from these two attributes."""
    consumer._fetch_min_bytes = min_bytes
    consumer._fetch_max_wait_ms = max_wait_ms
    return consumer


async def eager_wait_first(self: Any, *coros: Any, timeout: Any = None) -> WaitResults:
    """`Service.wait_first`, with the first argument run in place up to its first
    suspension when it is a coroutine (see the module docstring)."""
    first = coros[0] if coros else None
    if not asyncio.iscoroutine(first) or self._stopped.is_set() or self._crashed.is_set():
        return await _original_wait_first(self, *coros, timeout=timeout)
    try:
        yielded = first.send(None)
    except StopIteration as done:
        for other in coros[1:]:
            if asyncio.iscoroutine(other):
                other.close()  # never started: close it, as a cancelled task would be
        return WaitResults([first], [done.value], False)
    except BaseException:
        for other in coros[1:]:
            if asyncio.iscoroutine(other):
                other.close()
        raise
    rest = asyncio.ensure_future(_resume(first, yielded))
    results = await _original_wait_first(self, rest, *coros[1:], timeout=timeout)
    winners = [first if winner is rest else winner for winner in results.done]
    return WaitResults(winners, results.results, results.stopped)


async def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    """Drive `coro` on from a suspension at `yielded`, as a Task would have.

    A coroutine suspends by yielding a Future it waits for (or None: a bare yield, as
    in `asyncio.sleep(0)`). Wait for that future here, then resume the coroutine, which
    reads the future's result itself; what the wait raised (the future's exception, or the
    cancellation of this task) is thrown into the coroutine, as a Task does."""
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                await _settled(yielded)
        except BaseException as raised:  # handed to the coroutine, as a Task does
            try:
                yielded = coro.throw(raised)
            except StopIteration as done:
                return done.value
            continue
        try:
            yielded = coro.send(None)
        except StopIteration as done:
            return done.value


@types.coroutine
def _settled(future: Any) -> Generator[Any, None, None]:
    """Await `future` without reading its outcome (the resumed coroutine reads it)."""
    if not future.done():
        future._asyncio_future_blocking = True
        yield future
