"""Events fetched before a rebalance are neither decided nor acknowledged after it.

Faust tags each message with the consumer group generation it was fetched in and skips,
as it iterates a stream, those of an older generation (faust-streaming #221, #223): after
a rebalance the partition is read again from its committed offset. A batch taken with
`Stream.noack_take` is collected before the rebalance and handed to the agent after it,
so that skip never sees it. Deciding such a batch is harmless (the new owner, or this
worker after seeking back, reads the same inputs again and finds them decided), but
acknowledging it is not: Faust forgets a revoked partition's committed offset, and its
`_new_offset` then commits from the lowest acknowledged offset without checking that
the offsets below it were acknowledged (faust-streaming #312), so the stale batch's
offsets could be committed past records the stream clock had buffered and dropped at
the revocation, and those records would never be read again.

Faust sets the new generation only when partitions are assigned, after the revocation, so
an event handled between the two still carries the current generation: what counts is
the generation in force at the last revocation (`Generations.revoked`). The partition
agent drops every event fetched in it or before on intake (`Generations.current`), and the
committer never acknowledges one (`Generations.is_stale`).
tests/unit/test_runtime_pins.py fails if messages stop carrying `generation_id` or the
consumer stops setting the app's `consumer_generation_id` on assignment.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Generations:
    """Which fetched events a rebalance has made stale."""

    def __init__(self) -> None:
        #: the consumer generation in force when partitions were last revoked
        self.last_revoked: int | None = None

    def revoked(self, generation: int) -> None:
        """A rebalance began: everything fetched so far will be read again."""
        self.last_revoked = generation

    def is_stale(self, event: Any) -> bool:
        fetched = getattr(event.message, "generation_id", None)
        return fetched is not None and self.last_revoked is not None and fetched <= self.last_revoked

    def current(self, events: Iterable[Any]) -> tuple[list[Any], int]:
        """The events fetched since the last revocation, and how many older ones were dropped."""
        kept, dropped = [], 0
        for event in events:
            if self.is_stale(event):
                dropped += 1
            else:
                kept.append(event)
        return kept, dropped


__all__ = ["Generations"]
