"""The synthetic load generator: valid, reproducible, as mixed as configured, replayable.

Correctness only: nothing here measures time.
"""

from __future__ import annotations

from collections import Counter
from functools import cache

import orjson
import pytest
from click.testing import CliRunner

from streams import areas, codec, contracts
from streams.engine import Register
from streams.engine.timeutil import local_day, parse_date, parse_ts
from streams.load import (
    HIGHWAY_SCANS,
    PCR_RESULTS,
    RISK_AREAS,
    STATION_SCANS,
    LoadConfig,
    command,
    counties,
    generate,
    parse_mix,
    upgrade,
    visitors,
)
from streams.replay import Replay, read_recording
from streams.topics import INPUT_SCHEMAS

END = parse_ts("2026-03-01T12:00:00+08:00")
CONFIG = LoadConfig(seed=11, scans=1500, end=END, hours=24)


@cache
def records(cfg: LoadConfig = CONFIG) -> tuple[dict, ...]:
    return tuple(generate(cfg))


def scans(recs):
    return [r for r in recs if r["topic"] in (STATION_SCANS, HIGHWAY_SCANS)]


def test_every_record_is_valid_against_its_schema_and_keyed_as_the_contract_says():
    specs = contracts.topics()
    recs = records()
    assert Counter(r["topic"] for r in recs).keys() >= {STATION_SCANS, HIGHWAY_SCANS, RISK_AREAS,
                                                        PCR_RESULTS}
    for record in recs:
        value = record["value"]
        contracts.validator(INPUT_SCHEMAS[record["topic"]]).validate(value)
        assert record["key"] == specs[record["topic"]].key_for(value)
        # the whole input gate (raw-id check, known area codes), as the workers run it
        raw = orjson.dumps(value)
        assert codec.decode(record["topic"], raw, END, codec.Limits(None, None)) == value


def test_areas_are_real_shanxi_checkpoints_and_real_counties():
    recs = scans(records())
    assert {r["value"]["checkpoint"]["area"][:2] for r in recs} == {"14"}
    assert len({r["value"]["checkpoint"]["area"] for r in recs}) > 20
    assert all(areas.is_known(e["area"]) for r in recs for e in r["value"]["travel"])
    assert len(counties()["14"]) == 117  # Shanxi's 117 counties (DOMAIN.md "Scale")


def test_same_seed_same_bytes_other_seed_other_stream():
    cfg = LoadConfig(seed=5, scans=400, end=END)
    first = [orjson.dumps(r) for r in generate(cfg)]
    assert first == [orjson.dumps(r) for r in generate(cfg)]
    other = [orjson.dumps(r) for r in generate(LoadConfig(seed=6, scans=400, end=END))]
    assert other != first and not {r["value"]["id"] for r in map(orjson.loads, other)} & {
        r["value"]["id"] for r in map(orjson.loads, first)}


def test_records_come_in_event_time_order_near_the_end_and_count_as_asked():
    recs = records()
    times = [parse_ts(r["value"]["event_time"]) for r in recs]
    assert times == sorted(times)
    assert len(scans(recs)) == CONFIG.scans
    scan_times = [parse_ts(r["value"]["event_time"]) for r in scans(recs)]
    assert scan_times[0] == END - 24 * 3_600_000 and scan_times[-1] == END
    assert max(times) <= END  # results not reported by the end are not in the stream


def test_histories_are_seven_or_fourteen_days_ending_the_day_before():
    lengths = Counter()
    for record in scans(records()):
        value = record["value"]
        days = sorted(parse_date(e["date"]) for e in value["travel"])
        lengths[len(days)] += 1
        assert days[-1] == local_day(parse_ts(value["event_time"])) - 1
        assert days == list(range(days[0], days[-1] + 1))
    assert set(lengths) == {7, 14}


def classify(recs) -> list[str]:
    """Each scan's risk category from the register as the stream built it so far."""
    register = Register()
    out = []
    risky = frozenset({"high", "medium"})
    for record in recs:
        value = record["value"]
        if record["topic"] == RISK_AREAS:
            register.apply_update(value)
            continue
        if record["topic"] not in (STATION_SCANS, HIGHWAY_SCANS):
            continue
        at = parse_ts(value["event_time"])
        levels = set()
        for entry in value["travel"]:
            county = entry["area"][:6]
            found = register.designation_at(county, at)
            if found is not None and found[0] in risky:
                levels.add(found[0])
            elif next(register.designated_within(county[:4], at, risky), None) is not None:
                levels.add("low")
        out.append(next((c for c in ("high", "medium", "low") if c in levels), "none"))
    return out


def test_risk_mix_roughly_as_configured():
    mix = {"high": 0.1, "medium": 0.2, "low": 0.3, "none": 0.4}
    cfg = LoadConfig(seed=3, scans=4000, end=END, mix=mix)
    told: list[str] = []
    recs = list(generate(cfg, on_scan=told.append))
    seen = classify(recs)
    assert len(seen) == len(told) == 4000
    for category, share in mix.items():
        assert abs(told.count(category) / 4000 - share) < 0.03, category
        assert abs(seen.count(category) / 4000 - share) < 0.03, category
    agree = sum(a == b for a, b in zip(seen, told, strict=True)) / 4000
    assert agree > 0.98


def test_parse_mix_normalises_and_refuses_nonsense():
    assert parse_mix("high=1,none=3") == {"high": 0.25, "medium": 0.0, "low": 0.0, "none": 0.75}
    with pytest.raises(ValueError):
        parse_mix("severe=1")
    with pytest.raises(ValueError):
        parse_mix("high=0")


def test_trips_carry_many_passengers_and_tubes_pool_twenty():
    recs = records()
    by_trip = Counter((r["value"]["trip"]["mode"], r["value"]["trip"]["number"])
                      for r in scans(recs))
    assert max(n for (mode, _), n in by_trip.items() if mode in ("train", "flight")) >= 40
    pooled = [r["value"] for r in recs if r["topic"] == PCR_RESULTS]
    assert pooled and {len(v["members"]) for v in pooled} == {20}
    for value in pooled:
        delay = parse_ts(value["event_time"]) - parse_ts(value["collected_at"])
        assert 6 * 3_600_000 <= delay <= 24 * 3_600_000


def test_replays_without_dead_letters_and_upgrades_reevaluate_visitors():
    recs = records()
    parsed, dead = read_recording(orjson.dumps(r) for r in recs)
    run = Replay()
    outputs = run.run(parsed)
    assert not dead and run.tally.dead_letters == 0 and run.tally.reconciles()
    assert run.tally.processed == len(recs)
    changes = [o["value"] for o in outputs if o["topic"] == "checkpoint.code-changes"]
    rules = Counter(c["rule"] for c in changes)
    assert any(r.endswith("-high") for r in rules) and any(r.endswith("-medium") for r in rules)
    upgrades = {r["value"]["id"] for r in recs if r["topic"] == RISK_AREAS and "-up" in r["value"]["id"]}
    assert len(upgrades) == 2
    assert any(set(c["caused_by"]) & upgrades for c in changes)  # retroactive re-evaluation
    assert rules["T-exposed-trip"] > 0  # the exposed train's passengers


def test_visitors_then_upgrade_reevaluates_every_visitor():
    area = "610113"
    recs = list(visitors(300, area, end=END))
    raise_ = upgrade(area, "high", END + 60_000, effective=END - 3_600_000, update_id="ra-bench-1")
    parsed, dead = read_recording(orjson.dumps(r) for r in [*recs, raise_])
    run = Replay()
    outputs = run.run(parsed)
    assert not dead
    raised = [o for o in outputs if o["topic"] == "checkpoint.code-changes"
              and "ra-bench-1" in o["value"]["caused_by"]]
    assert len({o["key"] for o in raised}) == 300 and {o["value"]["to"] for o in raised} == {"red"}


def test_cli_writes_the_same_stream_as_the_generator(tmp_path):
    out = tmp_path / "load.jsonl"
    result = CliRunner().invoke(command, ["--seed", "5", "--scans", "300", "--out", str(out),
                                          "--end", "2026-03-01T12:00:00+08:00", "--no-progress"])
    assert result.exit_code == 0, result.output
    expected = [orjson.dumps(r) for r in generate(LoadConfig(seed=5, scans=300, end=END))]
    assert out.read_bytes().splitlines() == expected


def test_a_population_run_brings_back_only_the_persons_of_an_earlier_run():
    """A soak after a warm-up: every scan is by one of the warm-up's first persons."""
    from streams.load import person_ref

    end = parse_ts("2022-08-20T12:00:00+08:00")
    warm = [r for r in generate(LoadConfig(seed=1, scans=400, end=end)) if "person" in r["value"]]
    first = [person_ref(1, n) for n in range(100)]
    assert set(first) <= {r["value"]["person"] for r in warm}
    soak = [r["value"] for r in generate(LoadConfig(seed=2, scans=1_000, end=end + 3_600_000,
                                                    population=100, population_seed=1,
                                                    upgrades=0, exposed_trips=0))
            if r["topic"].startswith("checkpoint.scans.")]
    assert len(soak) == 1_000 and {v["person"] for v in soak} <= set(first)
    assert len({v["person"] for v in soak}) > 90
    assert not {v["id"] for v in soak} & {r["value"]["id"] for r in warm}
    # each comes back with the same stays (no area raised meanwhile): nothing piles up in
    # their state over a soak
    stays: dict[str, set[str]] = {}
    for value in soak:
        areas = {entry["area"] for entry in value["travel"]}
        assert stays.setdefault(value["person"], areas) == areas
