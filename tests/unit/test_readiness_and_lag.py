"""Pure parts of readiness (which agents count as down) and of the `lag` command."""

from __future__ import annotations

from types import SimpleNamespace

from streams.cli.lag import consumed_topics, partition_lags
from streams.live import Live
from streams.settings import Settings


def shell(**agents: bool) -> SimpleNamespace:
    return SimpleNamespace(agents=agents, crashes={},
                           settings=Settings(ready_hold_after_crash=30.0))


def test_an_agent_is_down_while_not_running_and_for_the_hold_after_a_crash() -> None:
    live = shell(partitions=True, report_parts=True)
    assert Live.agents_down(live, now=100.0) == []
    live.crashes["report_parts"] = (100.0, "KeyError")
    live.agents["report_parts"] = False  # crashed, Faust not yet restarted it
    assert Live.agents_down(live, now=100.001) == ["report_parts (crashed: KeyError)"]
    live.agents["report_parts"] = True  # restarted
    assert Live.agents_down(live, now=112.0) == [
        "report_parts (restarted 12 s after a crash: KeyError)"]
    assert Live.agents_down(live, now=130.0) == []
    live.agents["partitions"] = False  # never started, or stopped for a rebalance
    assert Live.agents_down(live, now=130.0) == ["partitions"]


def test_lag_counts_from_the_committed_offset_or_the_log_start() -> None:
    rows = partition_lags(
        committed={("t", 0): 4, ("t", 1): 2},
        starts={("t", 0): 0, ("t", 1): 5, ("t", 2): 3},
        ends={("t", 0): 7, ("t", 1): 9, ("t", 2): 10},
        uncommitted=[("t", 1), ("t", 2)])
    assert [(r.partition, r.committed, r.end, r.lag) for r in rows] == [
        (0, 4, 7, 3),
        (1, 2, 9, 4),      # committed below the log start: resumes at the start (5)
        (2, None, 10, 7),  # never committed: the whole log
    ]


def test_the_topics_of_a_group_of_this_project() -> None:
    assert consumed_topics("staging.checkpoint-streams")[0] == "staging.checkpoint.scans.station"
    assert "checkpoint.internal.report-parts" in consumed_topics("checkpoint-streams")
    assert consumed_topics("other-app") == consumed_topics("a.b.checkpoint-streams") == []
