"""The compiled rules (streams.engine.matching) decide as the rule walk does, cause for cause.

Every call of `first_match` during a replay is checked against `first_match_walk` (the
rules tried in file order, each condition asking the register), and the replay's bytes
are compared with a replay that walks: on every bundled scenario, on recordings drawn by
hypothesis (every kind of input, raises and lowerings, retroactive ones), and 100,000
seeded travel histories are matched both ways.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from streams.engine import Register, evaluate, load_policy_dir
from streams.engine.register import known_by
from streams.engine.timeutil import DAY_MS, format_ts, parse_ts
from streams.load import LoadConfig, generate
from streams.replay import Replay, dump_jsonl, read_recording, replay_file
from tests.integration.recordings import expand, plans

LEVELS = ("low", "medium", "high", "cases", "lifted")
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _checked(calls: list[int]) -> Any:
    compiled, walk = evaluate.first_match, evaluate.first_match_walk

    def both(*args: Any, **kwargs: Any) -> Any:
        found = compiled(*args, **kwargs)
        expected = walk(*args, **kwargs)
        assert (found and (found[0].id, found[1])) == (expected and (expected[0].id, expected[1]))
        calls[0] += 1
        return found
    return both


def _replay(records: list[dict[str, Any]]) -> bytes:
    parsed, _ = read_recording(orjson.dumps(r) for r in records)
    run = Replay()
    run.run(parsed, until=10**13)
    return dump_jsonl(run.outputs)


def test_every_match_of_every_bundled_scenario_is_the_walks(monkeypatch):
    files = sorted(SCENARIOS.glob("*.jsonl"))
    assert files
    compiled = [dump_jsonl(replay_file(str(path), until=10**13).outputs) for path in files]
    calls = [0]
    monkeypatch.setattr(evaluate, "first_match", _checked(calls))
    checked = [dump_jsonl(replay_file(str(path), until=10**13).outputs) for path in files]
    monkeypatch.setattr(evaluate, "first_match", evaluate.first_match_walk)
    walked = [dump_jsonl(replay_file(str(path), until=10**13).outputs) for path in files]
    assert calls[0] > 100
    assert compiled == checked == walked


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans(records=600))
def test_generated_recordings_decide_as_the_walk(plan):
    records = expand(plan)
    compiled = _replay(records)
    calls = [0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate, "first_match", _checked(calls))
        checked = _replay(records)
        patch.setattr(evaluate, "first_match", evaluate.first_match_walk)
        walked = _replay(records)
    assert compiled == checked == walked


def test_100k_seeded_travel_histories_match_as_the_walk():
    """100,000 travel histories drawn (seeded) from the areas a generated load designates,
    their neighbours in the same county and city, whole provinces and places elsewhere,
    against a register of raises, lowerings and lifts whose effect and publication
    differ; judged at random instants, as known then or earlier (a raise's
    re-evaluation), under every bundled policy: the same rule and the same causes."""
    end = parse_ts("2022-08-20T12:00:00+08:00")
    draw = random.Random(5)
    register = Register()
    designated = []
    for record in generate(LoadConfig(seed=5, scans=2_000, end=end)):
        if record["topic"] == "checkpoint.risk-areas":
            register.apply_update(record["value"])
            designated.append(record["value"]["area"])
    start = end - 20 * DAY_MS
    for n in range(400):
        area = draw.choice(designated)
        area = area[:draw.choice((6, 9, len(area)))] + (
            f"{draw.randrange(100):02d}" if draw.random() < 0.3 else "")
        published = draw.randrange(start, end)
        register.apply_update({
            "id": f"ra-t-{n}", "area": area, "level": draw.choice(LEVELS),
            "event_time": format_ts(published),
            "effective_at": format_ts(published - draw.randrange(0, 3 * DAY_MS)),
        })
        designated.append(area)
    pool = sorted({*designated, *(a[:6] + "001" for a in designated if len(a) >= 6),
                   *(a[:4] + "99" for a in designated), *(a[:2] for a in designated),
                   "110105", "310101", "440305", "650102"})
    policies = load_policy_dir().policies
    rules = 0
    for _ in range(100_000):
        policy = draw.choice(policies)
        at = draw.randrange(start, end + DAY_MS)
        known = known_by(at) if draw.random() < 0.8 else known_by(draw.randrange(start, at))
        visited = list(dict.fromkeys(draw.choice(pool) for _ in range(draw.randrange(1, 8))))
        inbound = {"quarantine_days": draw.choice((7, 10, 14))} if draw.random() < 0.1 else None
        found = evaluate.first_match(policy, "arrival", visited, register, at, inbound, known)
        walked = evaluate.first_match_walk(policy, "arrival", visited, register, at, inbound,
                                           known)
        assert (found and (found[0].id, found[1])) == (walked and (walked[0].id, walked[1]))
        rules += found is not None
    assert rules > 20_000  # most histories meet some rule: the comparison is not vacuous
