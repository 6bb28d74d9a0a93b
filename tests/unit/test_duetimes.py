"""Due times (streams/runtime/duetimes.py): what fires, and what holds a day open."""

from __future__ import annotations

from streams.runtime.duetimes import DueTimes


def test_a_due_time_fires_once_and_stays_firing_until_its_tick_is_decided():
    due = DueTimes()
    due.note("a", 100)
    due.note("b", 300)
    assert due.earliest() == 100
    assert due.pop_due(200) == [("a", 100)]
    assert due.pop_due(200) == []
    assert due.earliest() == 100  # a's tick is on its way: its release is not counted yet
    due.decided("a")
    assert due.earliest() == 300


def test_a_newer_state_replaces_the_due_time_and_ends_the_firing():
    due = DueTimes()
    due.note("a", 100)
    due.pop_due(100)
    due.note("a", 500)  # the tick decided: the next control is due later
    assert due.earliest() == 500
    due.note("a", None)
    assert due.earliest() is None and len(due) == 0


def test_forgetting_a_person_drops_its_firing_tick_too():
    due = DueTimes()
    due.note("a", 100)
    due.pop_due(100)
    due.forget(["a"])
    assert due.earliest() is None
