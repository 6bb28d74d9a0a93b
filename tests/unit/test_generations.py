"""Events fetched before a rebalance are neither decided nor acknowledged after it
(streams.runtime.generations; the chaos test's two-worker kill once lost a scan's state)."""

from __future__ import annotations

from types import SimpleNamespace

from streams.runtime.generations import Generations


def event(generation: int | None) -> SimpleNamespace:
    return SimpleNamespace(message=SimpleNamespace(generation_id=generation))


def test_before_any_rebalance_every_event_is_current():
    kept, dropped = Generations().current([event(1), event(None)])
    assert len(kept) == 2 and dropped == 0


def test_events_fetched_in_or_before_the_revoked_generation_are_dropped():
    generations = Generations()
    generations.revoked(4)  # the new generation is set only on assignment, after this
    batch = [event(3), event(4), event(5), event(None)]
    kept, dropped = generations.current(batch)
    assert [e.message.generation_id for e in kept] == [5, None] and dropped == 2
    assert generations.is_stale(event(4)) and not generations.is_stale(event(5))
