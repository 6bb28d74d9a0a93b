"""streams.runtime.refetch: which topic-partitions lost records between the consumer's
fetcher and the agent, and where to read them again from."""

from __future__ import annotations

from streams.runtime.refetch import Fetcher, Refetch

TP = ("t.checkpoint.operator-commands", 2)


def checks(watch: Refetch, facts: dict, times: int, queue_empty: bool = True) -> list:
    found: list = []
    for _ in range(times):
        found = watch.check(facts, queue_empty)
    return found


def test_the_case_seen_live_is_read_again_from_the_committed_offset_after_three_checks():
    """Read offset at the committed 6, the fetcher at 15, nothing buffered or queued."""
    watch = Refetch(patience=3)
    facts = {TP: Fetcher(position=15, buffered=False, committed=6)}
    assert watch.check(facts, True) == []
    assert watch.check(facts, True) == []
    assert watch.check(facts, True) == [(TP, 6)]


def test_after_records_the_agent_saw_it_reads_from_the_one_after_the_last():
    watch = Refetch(patience=2)
    for offset in range(6, 10):
        watch.admit(TP, offset)
    facts = {TP: Fetcher(position=15, buffered=False, committed=6)}
    assert checks(watch, facts, 2) == [(TP, 10)]


def test_a_partition_never_committed_and_never_seen_is_read_from_its_start():
    watch = Refetch(patience=1)
    assert watch.check({TP: Fetcher(position=4, buffered=False, committed=None)}, True) == [(TP, 0)]


def test_nothing_is_sought_while_records_are_on_their_way():
    watch = Refetch(patience=2)
    watch.admit(TP, 9)
    # the agent saw everything the fetcher handed over
    assert checks(watch, {TP: Fetcher(10, False, 6)}, 5) == []
    # the fetcher still holds records for the partition
    assert checks(watch, {TP: Fetcher(15, True, 6)}, 5) == []
    # Faust's queue for the agent is not empty: the records may be in it
    assert checks(watch, {TP: Fetcher(15, False, 6)}, 5, queue_empty=False) == []
    # the position is not known yet (a new assignment)
    assert checks(watch, {TP: Fetcher(None, False, 6)}, 5) == []


def test_progress_between_checks_starts_the_count_again():
    watch = Refetch(patience=3)
    assert watch.check({TP: Fetcher(15, False, 6)}, True) == []
    assert watch.check({TP: Fetcher(15, False, 6)}, True) == []
    watch.seen[TP] = 8  # the agent moved on: what was suspected may have been in flight
    assert watch.check({TP: Fetcher(15, False, 6)}, True) == []
    assert watch.check({TP: Fetcher(15, False, 6)}, True) == []
    assert watch.check({TP: Fetcher(15, False, 6)}, True) == [(TP, 8)]


def test_a_queue_found_not_empty_starts_every_count_again():
    watch = Refetch(patience=2)
    facts = {TP: Fetcher(15, False, 6)}
    assert watch.check(facts, True) == []
    assert watch.check(facts, False) == []
    assert watch.check(facts, True) == []
    assert watch.check(facts, True) == [(TP, 6)]


def test_revoked_partitions_are_expected_from_their_committed_offset_again():
    """After a rebalance Faust seeks a partition to its committed offset: what the agent
    saw before it says nothing of what comes next."""
    watch = Refetch(patience=1)
    watch.admit(TP, 40)
    watch.admit(("t.checkpoint.scans.station", 1), 12)
    watch.forget({2})
    assert watch.seen == {("t.checkpoint.scans.station", 1): 13}
    assert watch.check({TP: Fetcher(15, False, 6)}, True) == [(TP, 6)]


def test_a_gap_found_again_after_its_seek_is_left_alone():
    """Offsets with no records to deliver (a transaction's commit marker, records deleted
    by retention): the fetcher's position passes them, the agent never sees one, and one
    seek back shows it. Sought once, not every `patience` checks for ever."""
    watch = Refetch(patience=2)
    facts = {TP: Fetcher(15, False, 6)}
    answers = [watch.check(facts, True) for _ in range(6)]
    assert answers == [[], [(TP, 6)], [], [], [], []]
    # a new gap (the agent moved on, the position too) is looked at afresh
    watch.seen[TP] = 21
    later = {TP: Fetcher(23, False, 6)}
    assert [watch.check(later, True) for _ in range(3)] == [[], [(TP, 21)], []]


# -- admission: each record once, holes read again -------------------------------------
def test_records_in_offset_order_are_all_handed_over_and_nothing_is_sought():
    watch = Refetch()
    assert all(watch.admit(TP, offset) for offset in range(5, 12))
    assert watch.take_wanted() == [] and watch.seen[TP] == 12


def test_a_record_read_again_is_not_handed_over_twice():
    """After a rebalance Faust can hand over a kept partition's records from the fetcher's
    position and again from the committed offset it then seeks to."""
    for strict in (False, True):
        watch = Refetch(strict=strict)
        assert [watch.admit(TP, o) for o in (20, 21, 22)] == [True, True, True]
        assert [watch.admit(TP, o) for o in (20, 21, 22, 23)] == [False, False, False, True]
        assert watch.take_wanted() == []


def test_wall_clock_a_hole_is_read_again_and_only_its_records_are_taken_from_the_second_reading():
    watch = Refetch(strict=False)
    assert [watch.admit(TP, o) for o in (24, 28, 29)] == [True, True, True]  # 25..27 lost
    assert watch.take_wanted() == [(TP, 25)]
    assert watch.take_wanted() == []  # asked once
    assert [watch.admit(TP, o) for o in (25, 26, 27, 28, 29, 30)] == [True, True, True, False, False, True]
    assert watch.holes[TP] == []


def test_wall_clock_a_hole_that_never_fills_costs_one_seek_and_stays_bounded():
    """A transactional producer's commit markers take offsets no record holds."""
    watch = Refetch(strict=False)
    watch.admit(TP, 0)
    seeks = []
    for start in range(2, 200, 2):  # a marker at every odd offset
        assert watch.admit(TP, start)
        seeks += watch.take_wanted()
    assert len(seeks) == 99
    assert len(watch.holes[TP]) == 16


def test_two_holes_in_one_batch_are_read_again_from_the_first():
    watch = Refetch(strict=False)
    assert [watch.admit(TP, o) for o in (1, 3, 6)] == [True, True, True]
    assert watch.take_wanted() == [(TP, 2)]
    assert [watch.admit(TP, o) for o in (2, 3, 4, 5, 6)] == [True, False, True, True, False]
    assert watch.holes[TP] == []


def test_stream_clock_records_after_a_hole_wait_for_it():
    """The alignment takes a partition's records in offset order: a record after a hole
    is dropped, and read again with the hole."""
    watch = Refetch(strict=True)
    assert [watch.admit(TP, o) for o in (24, 28, 29)] == [True, False, False]
    assert watch.take_wanted() == [(TP, 25)]
    assert [watch.admit(TP, o) for o in (30, 31)] == [False, False]  # in flight: no new seek
    assert watch.take_wanted() == []
    assert [watch.admit(TP, o) for o in (25, 26, 27, 28, 29, 30)] == [True] * 6


def test_stream_clock_a_hole_with_no_records_is_taken_past_after_the_watch_saw_it_twice():
    watch = Refetch(strict=True, patience=1)
    watch.admit(TP, 24)
    assert not watch.admit(TP, 26)  # offset 25 is a commit marker
    assert watch.take_wanted() == [(TP, 25)]
    facts = {TP: Fetcher(27, False, 0)}  # read again: the same gap, the queue empty
    assert watch.check(facts, True) == [(TP, 25)]  # the watch seeks once more...
    assert watch.check(facts, True) == [(TP, 25)]  # ...and, found again, marks it empty
    assert watch.admit(TP, 26)  # and the record after it is taken
    assert watch.check({TP: Fetcher(27, False, 0)}, True) == []
