"""When decided states may be saved (streams/delivery.py): after their own outputs and
every earlier batch's, without keeping delivered batches alive."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from streams.delivery import Barrier

pytestmark = pytest.mark.asyncio


def _delivery() -> asyncio.Future[object]:
    return asyncio.get_running_loop().create_future()


async def test_nothing_outstanding_saves_at_once():
    assert Barrier().chain([]) is None


async def test_a_batch_waits_for_the_earlier_batches_in_flight():
    barrier = Barrier()
    first, second = _delivery(), _delivery()
    one = barrier.chain([first])
    two = barrier.chain([second])
    second.set_result("ack")
    await asyncio.sleep(0)
    assert not two.done()  # its own outputs are in, the first batch's are not
    first.set_result("ack")
    await asyncio.wait_for(two, 1)
    assert one.done() and two.done()
    # a batch without outputs still waits for what is in flight before it
    third = _delivery()
    barrier.chain([third])
    assert barrier.chain([]) is not None


async def test_a_failed_delivery_fails_every_later_batch():
    barrier = Barrier()
    lost = _delivery()
    failed = barrier.chain([lost])
    lost.set_exception(OSError("broker gone"))
    with pytest.raises(OSError):
        await failed
    later = barrier.chain([])
    assert later is not None
    with pytest.raises(OSError):
        await later


async def test_delivered_batches_are_not_kept_alive_by_later_ones():
    """The chain is as long as what is in flight: a delivered barrier (and every
    acknowledgement it holds) is freed once nobody else refers to it."""
    barrier = Barrier()
    ack = _delivery()
    first = barrier.chain([ack])
    ack.set_result("ack")
    await first
    gone = weakref.ref(first)
    del first
    for _ in range(100):
        delivery = _delivery()
        next_one = barrier.chain([delivery])
        delivery.set_result("ack")
        await next_one
    gc.collect()
    assert gone() is None
