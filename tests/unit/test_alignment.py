"""The stream clock's order (streams/runtime/alignment.py): Given what a worker consumed,
When it asks what to take next, Then records come in key order, and only once nothing
earlier can still come from its own topics or from another partition."""

from __future__ import annotations

from streams.runtime.alignment import Alignment

TOPICS = ("a", "b")


def key(t: int, position: int = 0) -> tuple:
    return (t, 3, (1, (0, position)))


class Offsets:
    """What the consumer knows: high watermarks per (topic, partition)."""

    def __init__(self, ends: dict[tuple[str, int], int]) -> None:
        self.ends = ends

    def highwater(self, topic: str, partition: int) -> int | None:
        return self.ends.get((topic, partition))

    @staticmethod
    def committed(topic: str, partition: int) -> int | None:
        return None


def aligned(partitions: int = 1, ends: dict[tuple[str, int], int] | None = None) -> tuple[Alignment, Offsets]:
    offsets = Offsets(ends or {})
    return Alignment(partitions, TOPICS, offsets.highwater, offsets.committed), offsets


def test_records_of_two_topics_come_in_key_order_once_both_are_known():
    align, _ = aligned(ends={("a", 0): 2, ("b", 0): 1})
    align.add(0, "a", 0, key(10), "a10")
    align.add(0, "a", 1, key(30), "a30")
    assert list(align.ready(0)) == []  # topic b may still bring something earlier
    align.add(0, "b", 0, key(20), "b20")
    assert list(align.ready(0)) == ["a10", "b20", "a30"]


def test_a_topic_read_to_its_end_holds_nothing_back():
    align, _ = aligned(ends={("a", 0): 1, ("b", 0): 0})
    align.add(0, "a", 0, key(10), "a10")
    assert list(align.ready(0)) == ["a10"]


def test_a_topic_not_yet_fetched_holds_back_until_it_is():
    align, offsets = aligned(ends={("a", 0): 1})  # b's end not known yet
    align.add(0, "a", 0, key(10), "a10")
    assert list(align.ready(0)) == []
    offsets.ends[("b", 0)] = 0
    assert list(align.ready(0)) == ["a10"]


def test_a_topic_whose_last_record_is_later_does_not_hold_an_earlier_one_back():
    align, _ = aligned(ends={("a", 0): 2, ("b", 0): 5})
    align.add(0, "b", 0, key(50), "b50")
    assert list(align.ready(0)) == []  # a may bring something before 50
    align.add(0, "a", 0, key(10), "a10")
    assert list(align.ready(0)) == ["a10"]  # b's next is after 50, a's next after 10


def test_forwarded_items_wait_for_the_forwarding_partitions_mark():
    align, _ = aligned(partitions=2, ends={("a", 0): 0, ("b", 0): 0})
    align.add_item(0, key(20, 5), "item20")
    assert list(align.ready(0)) == []  # partition 1 has said nothing yet
    align.mark(0, 1, key(15), latest=15)
    assert list(align.ready(0)) == []  # it may still forward something before 20
    align.mark(0, 1, key(25), latest=24)
    assert list(align.ready(0)) == ["item20"]
    align.mark(0, 1, None, latest=30)  # nothing more from it
    align.add_item(0, key(40, 6), "item40")
    assert list(align.ready(0)) == ["item40"]


def test_own_mark_is_the_smallest_key_a_partition_may_still_forward():
    align, offsets = aligned(partitions=3, ends={("a", 0): 3, ("b", 0): 1})
    assert align.own_mark(0, 1) < key(0)  # nothing read yet: anything may come
    align.add(0, "a", 0, key(10), "a10", targets=(1,))
    align.add(0, "b", 0, key(5), "b5", targets=(2,))
    assert align.own_mark(0, 1) == key(10)  # b is read to its end; a10 forwards to 1
    assert align.own_mark(0, 2) == key(5)
    align.mark(0, 1, None, latest=0)
    align.mark(0, 2, None, latest=0)
    assert list(align.ready(0)) == ["b5", "a10"]
    assert align.own_mark(0, 1) == key(10)  # a is not at its end: its next is after 10
    assert align.own_mark(0, 2) == key(10)
    offsets.ends[("a", 0)] = 1
    assert align.own_mark(0, 1) is None


def test_marks_follow_what_was_fetched_not_what_was_taken():
    """A backlog of records that forward nowhere does not hold the other partitions back:
    the mark is the last fetched key, not the first untaken one (no lock-step)."""
    align, _ = aligned(partitions=2, ends={("a", 0): 100, ("b", 0): 0})
    for n in range(50):
        align.add(0, "a", n, key(10 + n), f"a{n}")
    assert list(align.ready(0)) == []  # partition 1 said nothing yet
    assert align.own_mark(0, 1) == key(59)  # but what 0 may forward is after its last fetch


def test_a_record_handed_on_at_once_still_moves_its_topic_on():
    align, _ = aligned(ends={("a", 0): 2, ("b", 0): 0})
    align.add(0, "a", 0, key(10), "a10")
    align.passed(0, "a", 1, key(20))  # relayed: the topic is read to its end
    assert list(align.ready(0)) == ["a10"]


def test_timers_follow_the_smallest_pending_key_then_the_latest_time_taken():
    align, _ = aligned(partitions=2, ends={("a", 0): 1, ("b", 0): 0})
    align.add(0, "a", 0, key(100), "a100")
    align.mark(0, 1, key(70), latest=60)
    assert align.watermark(0) == 70
    align.mark(0, 1, None, latest=120)
    assert list(align.ready(0)) == ["a100"]
    assert align.watermark(0) == 120  # everything taken: the latest time any partition took


def test_revoking_a_partition_returns_what_it_buffered_untaken():
    align, _ = aligned(ends={("a", 0): 5, ("b", 0): 5})
    align.add(0, "a", 0, key(10), "a10")
    align.add_item(0, key(5), "item5")
    assert sorted(align.revoke({0})) == ["a10", "item5"]
    assert align.tasks == {}


def test_the_global_minimum_is_always_taken_so_partitions_never_wait_in_a_cycle():
    """Two partitions each holding a record and each waiting on the other's mark: the one
    with the smaller key goes first once marks say where the other stands."""
    align, _ = aligned(partitions=2, ends={("a", 0): 1, ("b", 0): 0, ("a", 1): 1, ("b", 1): 0})
    align.add(0, "a", 0, key(10), "p0", targets=(1,))
    align.add(1, "a", 0, key(20, 1), "p1", targets=(0,))
    align.mark(0, 1, align.own_mark(1, 0), latest=0)
    align.mark(1, 0, align.own_mark(0, 1), latest=0)
    assert list(align.ready(1)) == []
    assert list(align.ready(0)) == ["p0"]
    align.mark(1, 0, align.own_mark(0, 1), latest=10)
    assert list(align.ready(1)) == ["p1"]


def test_a_record_handed_over_late_does_not_move_its_topic_back():
    """After a rebalance Faust may deliver a record fetched before its seek back to the
    committed offset after the records that follow it: the topic's position stays put."""
    align, _ = aligned(ends={("a", 0): 3, ("b", 0): 0})
    align.add(0, "a", 2, key(30), "a30")
    align.add(0, "a", 0, key(10), "a10 again")  # late
    assert align.own_mark(0, 1) is None  # a is read to its end (3), whatever came late
    assert list(align.ready(0)) == ["a10 again", "a30"]
