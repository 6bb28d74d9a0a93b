"""The committer (streams/runtime/delivery.py): Given units decided in order, When their
outputs and rows are acknowledged, Then states are stored after their outputs, counts rows
before states, and inputs acknowledged only at the end; a refused output stops it all."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from streams.engine import PersonState
from streams.runtime.delivery import Committer, FanoutAcks, OrderedAcks, Unit
from streams.runtime.states import States


class Writer:
    topic = "persons-changelog"

    def __init__(self) -> None:
        self.rows: list[tuple[bytes, bytes | None]] = []
        self.deliveries: list[asyncio.Future[Any]] = []

    async def write(self, rows: Any) -> list[asyncio.Future[Any]]:
        out = []
        for row in rows:
            self.rows.append(row)
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.deliveries.append(future)
            out.append(future)
        return out


def committer(failures: list[str]) -> tuple[Committer, Writer, States, list[Any]]:
    writer, acked = Writer(), []
    states = States({}, cache_size=10)

    async def ack(entry: Any) -> None:
        acked.append(entry)

    def failed(topic: str, error: BaseException) -> None:
        failures.append(topic)

    return Committer(writer, states, ack, on_failure=failed), writer, states, acked  # type: ignore[arg-type]


def test_outputs_then_counts_then_states_then_acknowledgements():
    async def scenario() -> None:
        done, writer, states, acked = committer([])
        output: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        state = PersonState("p-1", colour="red")
        states.decided(state)
        done.submit(Unit([output], [state], [(b"\x000\x00counts:2022-08-19", b"{}")], ["input-1"]))
        await asyncio.sleep(0.01)
        assert writer.rows == [] and acked == []  # the output is not acknowledged yet
        output.set_result(None)
        await asyncio.sleep(0.01)
        assert [key for key, _ in writer.rows] == [b"\x000\x00counts:2022-08-19", b"p-1"]
        assert acked == []  # the rows are not acknowledged yet
        assert states.inflight == {} and states.table == {}  # stored by the writer, not here
        for delivery in writer.deliveries:
            delivery.set_result(None)
        await done.drain()
        assert acked == ["input-1"]

    asyncio.run(scenario())


def test_a_state_decided_again_later_is_written_by_the_later_unit_only():
    async def scenario() -> None:
        done, writer, states, acked = committer([])
        first, second = PersonState("p-1", colour="yellow"), PersonState("p-1", colour="red")
        states.decided(first)
        states.decided(second)
        done.submit(Unit([], [first], [], ["a"]))
        done.submit(Unit([], [second], [], ["b"]))
        await asyncio.sleep(0.01)
        for delivery in writer.deliveries:
            delivery.set_result(None)
        await done.drain()
        assert [orjson.loads(value)["colour"] for _, value in writer.rows] == ["red"]
        assert acked == ["a", "b"]

    asyncio.run(scenario())


def test_a_refused_output_writes_no_state_and_acknowledges_nothing():
    async def scenario() -> None:
        failures: list[str] = []
        done, writer, states, acked = committer(failures)
        output: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        state = PersonState("p-1", colour="red")
        states.decided(state)
        done.submit(Unit([output], [state], [], ["input-1"]))
        output.set_exception(RuntimeError("MessageSizeTooLargeError"))
        await done.drain()
        assert writer.rows == [] and acked == []
        assert states.get("p-1") is state  # still in flight: the next input sees it

    asyncio.run(scenario())


def test_a_refused_row_acknowledges_nothing_and_is_reported():
    async def scenario() -> None:
        failures: list[str] = []
        done, writer, states, acked = committer(failures)
        state = PersonState("p-1")
        states.decided(state)
        done.submit(Unit([], [state], [], ["input-1"]))
        await asyncio.sleep(0.01)
        writer.deliveries[0].set_exception(RuntimeError("broker gone"))
        await done.drain()
        assert failures == ["persons-changelog"] and acked == []

    asyncio.run(scenario())


def test_states_are_served_newest_first_and_decoded_once():
    table: dict[bytes, bytes] = {b"p-1": orjson.dumps(PersonState("p-1", colour="yellow"))}
    states = States(table, cache_size=1)
    stored = states.get("p-1")
    assert stored is not None and stored.colour == "yellow" and states.get("p-1") is stored
    newer = PersonState("p-1", colour="red")
    states.decided(newer)
    assert states.get("p-1") is newer and states.is_newest(newer)
    raw = orjson.dumps(newer)
    table[b"p-1"] = raw
    states.stored(newer, raw)
    assert states.inflight == {} and states.get("p-1") is newer
    assert states.get("nobody") is None
    table[b"p-2"] = orjson.dumps(PersonState("p-2"))
    assert states.get("p-2") is not None and len(states) == 1  # the cache holds one



async def two_units(failures: list[str]) -> tuple[Committer, list[Any], list[asyncio.Future[Any]]]:
    """Two units of two persons decided in order, their rows written, none settled yet."""
    done, writer, states, acked = committer(failures)
    first, second = PersonState("p-1", colour="red"), PersonState("p-2", colour="yellow")
    for state in (first, second):
        states.decided(state)
    done.submit(Unit([], [first], [], ["input-10"]))
    done.submit(Unit([], [second], [], ["input-11"]))
    await asyncio.sleep(0.01)
    return done, acked, writer.deliveries


def test_a_later_unit_whose_rows_settle_first_is_acknowledged_after_the_earlier_one():
    """Faust commits from the lowest acknowledged offset and misses a one-offset gap at the
    head: had the later unit been acknowledged first, a commit could pass the earlier
    input while its state was not on the broker, and a kill -9 would lose it."""
    async def scenario() -> None:
        done, acked, (row_1, row_2) = await two_units([])
        row_2.set_result(None)  # the later unit's row is on the broker first
        await asyncio.sleep(0.01)
        assert acked == []
        row_1.set_result(None)
        await done.drain()
        assert acked == ["input-10", "input-11"]

    asyncio.run(scenario())


def test_after_a_refused_unit_no_later_unit_is_acknowledged():
    async def scenario() -> None:
        failures: list[str] = []
        done, acked, (row_1, row_2) = await two_units(failures)
        row_2.set_result(None)
        row_1.set_exception(RuntimeError("refused"))
        await done.drain()
        assert acked == [] and failures == ["persons-changelog"]

    asyncio.run(scenario())


def test_inputs_after_a_pending_fan_out_wait_for_it_and_go_in_offset_order():
    """A raise's fan-out (wall clock, in slices) is acknowledged with its last slice; the
    inputs after it on its topic partition must not be acknowledged first, or Faust could
    commit past the raise and a kill -9 would leave the rest of its visitors undecided."""
    acks = FanoutAcks()
    work, other = ("person-work", 0), ("person-work", 1)
    unit: list[int] = []
    acks.decided(work, 9, unit)
    acks.started(work)  # the raise at offset 10
    acks.decided(work, 11, unit)
    acks.decided(other, 4, unit)  # another partition does not wait
    acks.started(work)  # a second raise at offset 12
    acks.decided(work, 13, unit)
    assert unit == [9, 4]
    acks.finished(work, 10, unit, offset=int)
    assert unit == [9, 4, 10]  # 11 and 13 still wait for the raise at 12
    acks.finished(work, 12, unit, offset=int)
    assert unit == [9, 4, 10, 11, 12, 13]
    acks.decided(work, 14, unit)
    assert unit[-1] == 14


def test_a_revoked_partition_forgets_what_it_held():
    acks = FanoutAcks()
    unit: list[int] = []
    acks.started(("person-work", 2))
    acks.decided(("person-work", 2), 7, unit)
    acks.revoke({2})
    acks.decided(("person-work", 2), 8, unit)
    assert unit == [8]


# -- the stream clock: acknowledgements in offset order --------------------------------
HW = ("t.checkpoint.scans.highway", 1)


def test_a_record_decided_ahead_of_held_ones_is_acknowledged_after_them():
    """The case seen live: a dead letter at 136 decided at once while 66-135 waited for
    the stream clock; acknowledged then, Faust committed 137 and the records were lost."""
    acks = OrderedAcks()
    for offset in range(66, 138):
        acks.arrived(HW, offset)
    assert acks.done(HW, 136, "dead letter 136") == []
    assert len(acks) == 1
    released = []
    for offset in range(66, 136):
        released += acks.done(HW, offset, offset)
    assert released == [*range(66, 136), "dead letter 136"]
    assert acks.done(HW, 137, 137) == [137]
    assert len(acks) == 0


def test_topic_partitions_are_acknowledged_independently():
    other = ("t.checkpoint.scans.station", 1)
    acks = OrderedAcks()
    acks.arrived(HW, 5)
    acks.arrived(other, 9)
    assert acks.done(other, 9, "s9") == ["s9"]
    assert acks.done(HW, 5, "h5") == ["h5"]


def test_records_not_noted_or_noted_before_a_revocation_are_acknowledged_as_they_come():
    acks = OrderedAcks()
    assert acks.done(HW, 3, "unnoted") == ["unnoted"]
    acks.arrived(HW, 10)
    acks.arrived(HW, 11)
    acks.forget({1})  # revoked: the new owner reads 10 and 11 again
    assert acks.done(HW, 11, "late") == ["late"]
    acks.arrived(HW, 20)  # the partition comes back: noted afresh
    assert acks.done(HW, 11, "older") == ["older"]
    assert acks.done(HW, 20, "h20") == ["h20"]
