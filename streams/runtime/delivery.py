"""No input is acknowledged before everything that follows from it is on the broker.

Faust acknowledges the events of `Stream.take_events` in a `finally:` block, so an agent
that raises has its whole batch acknowledged, and Faust commits acknowledged offsets on
its commit timer, on a rebalance and on shutdown: an input whose outputs were never sent
would never be processed again. The worker therefore takes its events unacknowledged
(`Stream.noack_take`) and acknowledges each only here, once its unit is delivered:

1. the unit's outputs (code changes, alerts, dead letters, forwards) are acknowledged by
   the broker;
2. then its rows are written: the partitions' daily counts first, then the persons'
   states (both in the person table's changelog, each partition's rows in the order
   written), so that a state on the broker implies its counts are, and a redelivered
   input finds either its state (a duplicate, nothing sent or counted twice) or neither;
3. once those are acknowledged, and every earlier unit's events are, its events are
   acknowledged and Faust may commit them.

Units' deliveries may settle in another order than the units were decided (their rows go
to different changelog partitions), and Faust commits a partition's acknowledged offsets
from the lowest one it holds: its gap check misses a gap of exactly one offset at the head
(the committed offset is already the next to read) and is skipped once a revocation made
it forget the committed offset (faust-streaming #312). A later unit acknowledged first
could so commit past an input whose state was not yet written, and a kill -9 then lost it
(most likely what the CI's two-worker chaos test once showed: a scan whose state never
reached the changelog and was never read again). So units are acknowledged in order.

Units are written in the order they were decided (a later state may hold an earlier
unit's effects: the ids of inputs it has seen). A state a later unit decided again is not
written by the earlier one. Any delivery the broker refuses ends the worker at once
(`EXIT_UNDELIVERED`), before anything else runs: its inputs are not committed and are
processed again after a restart, never skipped.

Upstream: faust-streaming acknowledges on agent errors in `Stream.take_events`; see
docs/architecture.md ("Faust workarounds"). tests/unit/test_runtime_pins.py fails when
an upgrade changes `Stream.noack_take` or Faust's contiguous commit of acknowledged offsets.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..engine import PersonState
from .changelog import ChangelogWriter
from .states import States, encode

log = logging.getLogger("checkpoint_streams")

#: the worker's exit status when an output could not be delivered
EXIT_UNDELIVERED = 70


@dataclass(slots=True)
class Unit:
    """What one pass of the worker over its inputs decided."""

    deliveries: list[asyncio.Future[Any]] = field(default_factory=list)
    states: list[PersonState] = field(default_factory=list)
    #: partition rows (counts) and deleted persons' tombstones (None)
    rows: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)  # to acknowledge at the end

    def __bool__(self) -> bool:
        return bool(self.deliveries or self.states or self.rows or self.events)


def undelivered(topic: str, on_failure: Callable[[str, BaseException], None],
                delivery: asyncio.Future[Any]) -> None:
    """A delivery's done callback: a refused one ends the worker (see the module docstring)."""
    if delivery.cancelled():
        return
    error = delivery.exception()
    if error is not None:
        on_failure(topic, error)


def exit_undelivered(topic: str, error: BaseException) -> None:
    log.critical("output not delivered: exiting so that its input is processed again",
                 extra={"topic": topic, "error": repr(error), "exit_status": EXIT_UNDELIVERED})
    logging.shutdown()
    os._exit(EXIT_UNDELIVERED)


class FanoutAcks:
    """On the wall clock a raise's long fan-out is decided a slice per pass and its input
    acknowledged with the last slice, while later inputs go on. Acknowledged at once, the
    later inputs of the same topic partition would let Faust commit past the fan-out's
    input (a one-offset gap at the head, see the module docstring), and a kill -9 in the
    middle of the fan-out would then leave the rest of its visitors never re-evaluated. So
    they wait: released with the last of that partition's pending fan-outs, in offset order.
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], int] = {}
        self._held: dict[tuple[str, int], list[Any]] = {}

    def started(self, tp: tuple[str, int]) -> None:
        """A fan-out of an input of `tp` is deferred to slices."""
        self._pending[tp] = self._pending.get(tp, 0) + 1

    def decided(self, tp: tuple[str, int], entry: Any, events: list[Any]) -> None:
        """`entry` is decided: into `events` (a unit's, to acknowledge), or held while a
        fan-out of its topic partition is pending."""
        if self._pending.get(tp):
            self._held.setdefault(tp, []).append(entry)
        else:
            events.append(entry)

    def finished(self, tp: tuple[str, int], entry: Any, events: list[Any],
                 offset: Callable[[Any], int]) -> None:
        """The fan-out of `entry` is decided to its last slice: it goes into `events`, and
        with the last pending one of `tp` every entry held for it, in offset order."""
        left = self._pending.get(tp, 0) - 1
        if left > 0:
            self._pending[tp] = left
            events.append(entry)
            return
        self._pending.pop(tp, None)
        events.extend(sorted([entry, *self._held.pop(tp, [])], key=offset))

    def revoke(self, partitions: set[int]) -> None:
        """Partitions moved away: their held entries are read again by the new owner."""
        for tp in [tp for tp in (*self._pending, *self._held) if tp[1] in partitions]:
            self._pending.pop(tp, None)
            self._held.pop(tp, None)


class OrderedAcks:
    """On the stream clock, each topic partition's inputs acknowledged in offset order.

    The stream clock decides a partition's records in event-time order across its topics
    and holds them until then, but decides some as they come: a dead letter, a relay to
    its person's partition, a tick. Acknowledged at once, such a record lets Faust commit
    past the records of its topic partition still held before it (see the module
    docstring: the gap check misses a one-offset head gap, and is skipped once Faust
    forgot the committed offset, which it has not yet learnt before a partition's first
    commit), and a worker that then takes the partition over never reads them. Seen in
    the two-worker property test: a dead letter at offset 136 of a highway partition
    acknowledged while offsets 66-135 waited; the second worker started at 137, and 394
    outputs were missing. So each record handed to the agent is noted as it arrives
    (in offset order) and acknowledged once it and every record noted before it are done.
    """

    def __init__(self) -> None:
        self._arrived: dict[tuple[str, int], deque[int]] = {}
        self._done: dict[tuple[str, int], dict[int, Any]] = {}

    def arrived(self, tp: tuple[str, int], offset: int) -> None:
        self._arrived.setdefault(tp, deque()).append(offset)

    def done(self, tp: tuple[str, int], offset: int, entry: Any) -> list[Any]:
        """`entry`, the record at `offset`, is decided and delivered: what may be
        acknowledged now, in offset order (nothing while an earlier record is not done)."""
        arrived = self._arrived.get(tp)
        if not arrived or offset < arrived[0]:
            return [entry]  # noted before a revocation, or never: as it comes
        done = self._done.setdefault(tp, {})
        done[offset] = entry
        ready = []
        while arrived and arrived[0] in done:
            ready.append(done.pop(arrived.popleft()))
        return ready

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions revoked, or found not to be this worker's: what is held for them is
        never acknowledged here (their owner reads it again)."""
        gone = set(partitions)
        for table in (self._arrived, self._done):
            for tp in [tp for tp in table if tp[1] in gone]:
                del table[tp]

    def __len__(self) -> int:
        return sum(len(done) for done in self._done.values())


class Committer:
    """Writes and acknowledges units in order, in the background (see the module docstring)."""

    def __init__(self, writer: ChangelogWriter, states: States,
                 ack: Callable[[Any], Awaitable[Any]],
                 on_failure: Callable[[str, BaseException], None] = exit_undelivered) -> None:
        self.writer = writer
        self.states = states
        self.ack = ack
        self.on_failure = on_failure
        self._queue: asyncio.Queue[Unit] = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._acks: set[asyncio.Future[bool]] = set()
        #: the last unit's acknowledgement: the next one waits for it
        self._last_ack: asyncio.Future[bool] | None = None

    def submit(self, unit: Unit) -> None:
        if not unit:
            return
        self._idle.clear()
        self._queue.put_nowait(unit)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def drain(self) -> None:
        """Until every unit submitted so far is written and acknowledged."""
        await self._idle.wait()
        if self._acks:
            await asyncio.gather(*self._acks, return_exceptions=True)

    async def _run(self) -> None:
        while not self._queue.empty():
            unit = self._queue.get_nowait()
            await self._write(unit)
        self._idle.set()

    async def _write(self, unit: Unit) -> None:
        if unit.deliveries:
            outcomes = await asyncio.gather(*unit.deliveries, return_exceptions=True)
            if any(isinstance(outcome, BaseException) for outcome in outcomes):
                return  # refused: the delivery's callback acts; nothing after it is written
        written = [(state, encode(state)) for state in unit.states
                   if self.states.is_newest(state)]
        rows = [*unit.rows, *((state.person.encode(), raw) for state, raw in written)]
        deliveries = await self.writer.write(rows)
        for state, raw in written:
            self.states.stored(state, raw)
        for key, value in unit.rows:
            if value is None:
                self.states.deleted(key.decode())
        for delivery in deliveries:
            delivery.add_done_callback(functools.partial(undelivered, self.writer.topic,
                                                         self.on_failure))
        if unit.events:
            settled: Awaitable[Any] = asyncio.gather(*deliveries)
            acking = asyncio.ensure_future(self._acknowledge(settled, unit.events, self._last_ack))
            self._last_ack = acking
            self._acks.add(acking)
            acking.add_done_callback(self._acks.discard)

    async def _acknowledge(self, settled: Awaitable[Any], events: list[Any],
                           previous: asyncio.Future[bool] | None) -> bool:
        """Acknowledge `events` once `settled` and the previous unit's acknowledgement are;
        False (and nothing acknowledged, then or after) when anything was refused: the
        worker is ending and these inputs are read again."""
        try:
            await settled
        except Exception:
            return False
        if previous is not None:
            await asyncio.wait([previous])
            if previous.cancelled() or previous.exception() is not None or not previous.result():
                return False
        for event in events:
            await self.ack(event)
        return True
