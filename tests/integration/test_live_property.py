"""Property: for any recording, the live workers emit what the offline replay emits.

Hypothesis draws a plan (tests/integration/recordings.py) that expands to a recording of
every kind of input: scans at stations and highway exits, raises and lowerings (some
retroactive), single and pooled results (some late), contact notices and exposed trips,
operator commands, faulty area codes, inputs sent twice. The recording is produced as a
backlog before any worker starts, and one or two workers on the stream clock take it;
after de-duplicating by id (delivery is at-least-once) their outputs equal the replay's.

Two workers take the backlog with a rebalance in the middle of it (the second joins
while the first is deciding). That case failed about one run in three on a loaded
machine (it was an expected failure until 2026-12-03), for three reasons, each fixed in
the shell and each covered by unit tests of its own:
- a topic-partition stalled: Faust never handed its records to the agent after the
  rebalance, and the stream clock waited for them (streams.runtime.refetch reads them
  again; before, 2 of the first 3 runs under a CPU hog stalled for the whole timeout);
- records fetched before the revocation, and records handed over twice, reached the
  agent (dropped now: `Live.handle`, `Refetch.admit`);
- inputs were lost: a dead letter (or relay, or tick) decided at once was acknowledged
  while earlier records of its topic partition were still held by the stream clock, and
  Faust committed past them (`OrderedAcks`; a trace showed offsets 66-135 of a highway
  partition never decided, the second worker starting at 137).
After the fixes: 16 of 16 runs under a CPU hog equal to the replay.

CI runs one fixed plan of 2,000+ records with one and with two workers.
`CHECKPOINT_PROPERTY_EXAMPLES=N` adds N drawn plans (each costs a broker round of about
half a minute).
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from hypothesis import Phase, example, given, settings

from streams.replay import Replay, read_recording
from tests.integration.harness import Namespace, comparable, worker_pool
from tests.integration.recordings import Plan, expand, plans

EXAMPLES = int(os.environ.get("CHECKPOINT_PROPERTY_EXAMPLES", "0"))
#: the plan CI runs: every kind of input, 2,000+ records
FIXED = Plan(seed=20220820, records=2200, persons=300, raises=8, results=0.2, notices=0.05,
             commands=0.03, duplicates=0.03)


def replayed(records: list[dict]) -> list[dict]:
    parsed, rejected = read_recording(orjson.dumps(r) for r in records)
    run = Replay()
    return run.run(parsed, dead_letters=rejected)


def distinct(records: list[dict]) -> list[dict]:
    """One copy of each output (a redelivered input repeats its outputs, same ids)."""
    seen: dict[tuple[str, str], dict] = {}
    for record in records:
        seen.setdefault((record["topic"], record["value"]["id"]), record)
    return list(seen.values())


def live_outputs(bootstrap: str, records: list[dict], count: int, log_dir: Path) -> list[dict]:
    ns = Namespace(bootstrap)
    ns.produce(records)  # a backlog: the stream clock orders it, whatever the fetch order
    pool = worker_pool(ns, log_dir)
    start = next(pool)
    try:
        for n in range(count):
            start(name=f"p{n + 1}")
        ns.wait_idle(timeout=180)
        return ns.read()
    finally:
        next(pool, None)


@pytest.mark.parametrize("count", [1, 2],
                         ids=["one worker", "two workers"])
def test_live_workers_emit_what_the_replay_emits(count, broker, tmp_path_factory):
    phases = (Phase.explicit, Phase.generate) if EXAMPLES else (Phase.explicit,)

    @settings(max_examples=max(EXAMPLES, 1), phases=phases, deadline=None, database=None,
              derandomize=True)
    @given(plan=plans(records=2000))
    @example(plan=FIXED)
    def check(plan: Plan) -> None:
        records = expand(plan)
        assert len(records) >= 2000
        expected = replayed(records)
        live = live_outputs(broker, records, count, tmp_path_factory.mktemp("property"))
        got, want = comparable(distinct(live)), comparable(distinct(expected))
        missing = sorted(set(want) - set(got))[:3]
        extra = sorted(set(got) - set(want))[:3]
        assert got == want, f"{len(want)} expected, {len(got)} live; missing {missing}; extra {extra}"

    check()
