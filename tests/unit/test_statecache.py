"""The decoded-state cache: a hit only for the table's current value, oldest write out first."""

from __future__ import annotations

from streams.engine import PersonState
from streams.statecache import StateCache


def state(person: str) -> PersonState:
    return PersonState(person=person)


def test_a_state_is_handed_out_once_and_only_for_the_value_it_was_decoded_from():
    cache = StateCache(10)
    first = state("a")
    cache.put("a", b"v1", first)
    assert cache.take("a", b"v2") is None  # the table holds a newer value: a miss
    assert cache.take("a", b"v1") is None  # ... and the stale entry is gone
    cache.put("a", b"v1", first)
    assert cache.take("a", b"v1") is first
    assert cache.take("a", b"v1") is None  # the caller owns it now


def test_the_oldest_write_goes_first_and_a_rewrite_counts_as_new():
    cache = StateCache(3)
    for person in "abc":
        cache.put(person, person.encode(), state(person))
    cache.put("a", b"a2", state("a"))  # a written again: now the newest
    cache.put("d", b"d", state("d"))  # over the limit: b, the oldest write, goes
    assert len(cache) == 3
    assert cache.take("b", b"b") is None
    assert [cache.take(p, v) is not None for p, v in (("a", b"a2"), ("c", b"c"), ("d", b"d"))] == [
        True, True, True]


def test_eviction_stays_in_step_over_many_writes():
    cache = StateCache(100)
    for n in range(10_000):
        cache.put(f"p{n % 250}", str(n).encode(), state(f"p{n % 250}"))
    assert len(cache) == 100
    survivors = [n for n in range(9_900, 10_000) if cache.take(f"p{n % 250}", str(n).encode())]
    assert len(survivors) == 100
