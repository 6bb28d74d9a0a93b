"""The Faust hot-path patches keep mode's `wait_first` contract (streams/runtime/consumer.py).

`eager_wait_first` runs the first coroutine in place up to its first suspension. These
tests hold it to what `Service.wait_first` promises its callers: the winner and its
result, exceptions propagated, a blocked delivery still interrupted by the other
arguments (a rebalance suspending the flow), and a cancelled waiter not leaving the
delivery running.
"""

from __future__ import annotations

import asyncio

import pytest
from mode import Service

from streams.runtime.consumer import eager_wait_first

pytestmark = pytest.mark.asyncio


class _Service(Service):
    pass


async def _returns(value: object) -> object:
    return value


async def _raises() -> None:
    raise ValueError("boom")


async def _blocks_on(future: asyncio.Future[object]) -> object:
    return await future


async def test_a_delivery_that_never_suspends_wins_without_a_task():
    service = _Service()
    other = asyncio.Event()
    before = len(asyncio.all_tasks())
    first = _returns(42)
    result = await eager_wait_first(service, first, other.wait())
    assert result.done == [first] and result.results == [42] and not result.stopped
    assert len(asyncio.all_tasks()) == before  # nothing scheduled, nothing left behind


async def test_an_exception_propagates_as_from_wait_first():
    with pytest.raises(ValueError, match="boom"):
        await eager_wait_first(_Service(), _raises(), asyncio.Event().wait())


async def test_a_suspended_delivery_finishes_with_its_result():
    loop = asyncio.get_running_loop()
    future: asyncio.Future[object] = loop.create_future()
    loop.call_later(0.01, future.set_result, "delivered")
    first = _blocks_on(future)
    result = await eager_wait_first(_Service(), first, asyncio.Event().wait())
    assert result.done == [first] and result.results == ["delivered"]


async def test_a_suspended_delivery_sees_the_exception_of_what_it_awaited():
    loop = asyncio.get_running_loop()
    future: asyncio.Future[object] = loop.create_future()
    loop.call_later(0.01, future.set_exception, KeyError("gone"))
    with pytest.raises(KeyError):
        await eager_wait_first(_Service(), _blocks_on(future), asyncio.Event().wait())


async def test_a_suspended_delivery_may_handle_what_it_awaited_raising():
    """The awaited future's exception is thrown into the coroutine, as a Task does: its
    handler runs and its result stands."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[object] = loop.create_future()
    loop.call_later(0.01, future.set_exception, KeyError("gone"))
    cleaned = []

    async def delivery() -> str:
        try:
            await future
        except KeyError:
            return "recovered"
        finally:
            cleaned.append(True)
        return "unreachable"

    result = await eager_wait_first(_Service(), delivery(), asyncio.Event().wait())
    assert result.results == ["recovered"] and cleaned == [True]


async def test_a_blocked_delivery_is_interrupted_by_the_other_argument():
    """A full stream buffer blocks the delivery; a rebalance sets `suspend_flow`: the
    wait ends with the flag as winner and the delivery is cancelled."""
    loop = asyncio.get_running_loop()
    never: asyncio.Future[object] = loop.create_future()
    suspend_flow = asyncio.Event()
    cancelled = asyncio.Event()

    async def delivery() -> None:
        try:
            await never
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loop.call_later(0.01, suspend_flow.set)
    result = await eager_wait_first(_Service(), delivery(), suspend_flow.wait())
    assert len(result.done) == 1 and not result.stopped
    await asyncio.sleep(0)
    assert cancelled.is_set() and never.cancelled()


async def test_a_stopped_service_takes_the_original_path():
    service = _Service()
    service._stopped.set()
    result = await eager_wait_first(service, _returns(1))
    assert result.stopped
