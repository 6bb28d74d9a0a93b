"""The stream clock's watermark: timers wait for every topic of a partition with records left."""

from __future__ import annotations

from streams.streamclock import StreamClock

STATION, HIGHWAY, COMMANDS = "scans.station", "scans.highway", "commands"
DAY = 86_400_000


def consumed(clock: StreamClock, topic: str, partition: int, event_time: int, *, last: int) -> None:
    """Records up to offset `last` processed, the newest at `event_time`."""
    clock.saw(topic, partition, event_time)
    clock.processed(topic, partition, last)


def offsets(table: dict[tuple[str, int], int | None]):  # type: ignore[no-untyped-def]
    return lambda topic, partition: table.get((topic, partition))


def test_a_topic_that_ran_ahead_does_not_release_persons_whose_inputs_wait_on_another():
    """Given highway partition 2 consumed days ahead of station partition 2, which still has
    records waiting, Then partition 2's timers stay at the station topic's time."""
    clock = StreamClock([STATION, HIGHWAY])
    consumed(clock, STATION, 2, 1 * DAY, last=99)  # offsets 0..99 done, 100.. waiting
    consumed(clock, HIGHWAY, 2, 3 * DAY, last=499)
    highwater = offsets({(STATION, 2): 400, (HIGHWAY, 2): 500})
    assert clock.now(2) == 3 * DAY  # inputs: judged at their own time anyway
    assert clock.watermark(2, highwater, offsets({})) == 1 * DAY


def test_once_every_topic_has_caught_up_the_watermark_is_the_partitions_latest_time():
    clock = StreamClock([STATION, HIGHWAY])
    consumed(clock, STATION, 2, 1 * DAY, last=399)
    consumed(clock, HIGHWAY, 2, 3 * DAY, last=499)
    highwater = offsets({(STATION, 2): 400, (HIGHWAY, 2): 500})
    assert clock.watermark(2, highwater, offsets({})) == 3 * DAY


def test_a_quiet_topic_does_not_stall_the_clock():
    """An empty topic (high watermark 0), or one read up to its commit before this worker
    started, holds nothing back."""
    clock = StreamClock([STATION, COMMANDS, HIGHWAY])
    consumed(clock, STATION, 0, 5 * DAY, last=9)
    highwater = offsets({(STATION, 0): 10, (COMMANDS, 0): 0, (HIGHWAY, 0): 70})
    committed = offsets({(HIGHWAY, 0): 70})
    assert clock.watermark(0, highwater, committed) == 5 * DAY


def test_a_topic_with_records_not_yet_processed_or_not_yet_fetched_holds_the_clock():
    clock = StreamClock([STATION, HIGHWAY])
    consumed(clock, STATION, 1, 5 * DAY, last=9)
    done = offsets({(STATION, 1): 10})
    # highway: committed at 70 of 90, nothing processed here yet
    assert clock.watermark(1, offsets({(STATION, 1): 10, (HIGHWAY, 1): 90}),
                           offsets({(HIGHWAY, 1): 70})) == 0
    # highway: its high watermark not known yet (not fetched since the assignment)
    assert clock.watermark(1, done, offsets({})) == 0


def test_partitions_are_independent_and_forgotten_on_revocation():
    clock = StreamClock([STATION])
    consumed(clock, STATION, 0, 2 * DAY, last=4)
    consumed(clock, STATION, 1, 7 * DAY, last=4)
    highwater = offsets({(STATION, 0): 5, (STATION, 1): 5})
    assert clock.watermark(0, highwater, offsets({})) == 2 * DAY
    assert clock.now() == 7 * DAY
    clock.forget([1])
    assert clock.now(1) == 0 and clock.now() == 2 * DAY
    # partition 1 comes back: where to start is its commit, not what this worker did before
    assert clock.watermark(1, offsets({(STATION, 1): 9}), offsets({(STATION, 1): 9})) == 0


def test_times_and_offsets_only_move_forward():
    clock = StreamClock([STATION])
    clock.saw(STATION, 0, 3 * DAY)
    clock.saw(STATION, 0, 1 * DAY)  # an older scan after a newer one
    clock.processed(STATION, 0, 20)
    clock.processed(STATION, 0, 5)
    assert clock.now(0) == 3 * DAY
    assert clock.watermark(0, offsets({(STATION, 0): 21}), offsets({})) == 3 * DAY
