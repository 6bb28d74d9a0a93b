"""Daily and zero reports: counting rules, zero reports, attribution, the live clock."""

from __future__ import annotations

import pytest

from streams import contracts
from streams.engine import load_policy_dir
from streams.engine.timeutil import parse_date, parse_ts
from streams.replay import dump_jsonl, read_recording, replay_file
from streams.reports import (
    ReportTally,
    counties_within,
    due_days,
    report_areas,
    report_from_counts,
    report_instant,
    report_messages,
    sum_parts,
    tally_replay,
)
from tests.cli.conftest import SCENARIOS

BOOK = load_policy_dir()


def tally_of(name: str, until: str | None = "2022-09-30T00:00:00+08:00"):
    with open(SCENARIOS / f"{name}.jsonl", "rb") as handle:
        records, dead = read_recording(handle)
    return tally_replay(records, BOOK, dead_letters=dead, until=parse_ts(until) if until else None)


def test_pingyao_0819_two_pooled_tubes_forty_red_in_pingyao():
    tally, _ = tally_of("pingyao")
    day = parse_date("2022-08-19")
    report = tally.report("140728", day, report_instant(day))
    contracts.validator("report").validate(report)
    assert report["assigned"] == {"red": 40, "yellow": 0, "green": 0}
    assert report["by_rule"] == {"T-positive": 40}
    assert report["alerts"] == {"positive_pool": 2}
    assert report["generated_at"] == "2022-08-20T00:05:00+08:00"
    arrivals = tally.report("140728", parse_date("2022-08-18"), 0)["arrivals"]
    assert arrivals == {"station": 0, "highway": 40}


def test_every_configured_area_reports_even_with_nothing():
    tally, _ = tally_of("pingyao")
    day = parse_date("2022-08-16")
    reports = tally.reports(day, report_areas(BOOK), report_instant(day))
    assert len(reports) == 117  # every county of Shanxi, the bundled policies' jurisdiction
    zero = next(r for r in reports if r["area"] == "140728")
    assert zero == {
        "id": "rp-140728-2022-08-16", "area": "140728", "date": "2022-08-16",
        "arrivals": {"station": 0, "highway": 0},
        "assigned": {"red": 0, "yellow": 0, "green": 0},
        "released": {"red": 0, "yellow": 0, "green": 0},
        "by_rule": {}, "alerts": {}, "generated_at": "2022-08-17T00:05:00+08:00"}
    for report in reports:
        contracts.validator("report").validate(report)


def test_areas_configured_and_within():
    assert report_areas(BOOK, "1407") == counties_within("1407")
    assert "140728" in counties_within("1407") and all(c.startswith("1407") for c in counties_within("1407"))
    assert report_areas(BOOK, "140728, 140106") == ["140106", "140728"]
    tally, _ = tally_of("pingyao")
    day = parse_date("2022-08-19")
    within = tally.reports(day, report_areas(BOOK), 0, within="1407")
    assert {r["area"][:4] for r in within} == {"1407"}


def test_taiyuan_0820_blue_mark_and_monitoring_count_under_green():
    tally, _ = tally_of("taiyuan-0820")
    report = tally.report("140105", parse_date("2022-08-21"), 0)
    assert report["arrivals"] == {"station": 5, "highway": 0}
    assert report["assigned"] == {"red": 2, "yellow": 1, "green": 2}
    assert sum(report["by_rule"].values()) == 5


def test_releases_are_counted_where_the_control_started():
    tally, run = tally_of("shanxi-missed-test")
    release = next(o["value"] for o in run.outputs if o["value"].get("kind") == "release")
    assign = next(o["value"] for o in run.outputs if o["value"].get("kind") == "assign")
    area = next(a for (a, d), c in tally.cells.items() if c.assigned[assign["to"]])
    released = tally.report(area, parse_date(release["event_time"][:10]), 0)["released"]
    assert released[release["from"]] == 1
    assert tally.unattributed == 0


def test_contacts_without_a_scan_are_placed_by_the_notice_and_stay_there():
    tally, _ = tally_of("z22")
    contacts = tally.report("140502", parse_date("2022-08-20"), 0)
    assert contacts["by_rule"] == {"T-close-contact": 3, "T-secondary-contact": 3}
    assert not any(area == "14" for area, _ in tally.cells)  # later alerts follow them
    assert tally.unattributed == 0


def test_counting_does_not_change_the_replay():
    _, run = tally_of("z22", until=None)
    assert dump_jsonl(run.outputs) == dump_jsonl(replay_file(SCENARIOS / "z22.jsonl").outputs)


def test_tallies_merge_and_round_trip_through_json():
    z22, _ = tally_of("z22")
    pingyao, _ = tally_of("pingyao")
    merged = ReportTally.from_json(z22.to_json())
    merged.merge(pingyao)
    assert ReportTally.from_json(merged.to_json()).to_json() == merged.to_json()
    day = parse_date("2022-08-19")
    assert merged.report("140728", day, 0) == pingyao.report("140728", day, 0)
    assert merged.report("140106", day, 0) == z22.report("140106", day, 0)
    merged.prune(parse_date("2022-08-19"))
    assert min(merged.days()) == parse_date("2022-08-19")


def test_report_messages_are_keyed_area_date():
    tally, _ = tally_of("pingyao")
    day = parse_date("2022-08-19")
    messages = report_messages(tally, day, ["140728", "140702"], report_instant(day))
    assert [key for key, _ in messages] == ["140702:2022-08-19", "140728:2022-08-19"]
    spec = contracts.topics()["checkpoint.reports"]
    assert all(spec.key_for(value) == key for key, value in messages)


@pytest.mark.parametrize(("now", "last", "due"), [
    ("2022-08-20T00:04:59+08:00", None, ["2022-08-18"]),
    ("2022-08-20T00:05:00+08:00", None, ["2022-08-19"]),
    ("2022-08-20T00:05:00+08:00", "2022-08-19", []),
    ("2022-08-20T09:00:00+08:00", "2022-08-17", ["2022-08-18", "2022-08-19"]),
    ("2022-08-30T09:00:00+08:00", "2022-08-01", [f"2022-08-{d}" for d in range(23, 30)]),
])
def test_due_days_at_the_local_report_time(now, last, due):
    got = due_days(parse_ts(now), parse_date(last) if last else None, "00:05")
    assert got == [parse_date(d) for d in due]


def test_report_time_must_be_hh_mm():
    with pytest.raises(ValueError, match="not HH:MM"):
        due_days(0, None, "25:00")


def test_the_parts_of_several_partitions_add_up_to_the_report():
    """Each partition counts its own persons and sends its counts of an area and day as they
    stand; the report is their sum, and a part sent again replaces itself."""
    whole, _ = tally_of("pingyao")
    day = parse_date("2022-08-19")
    counts = whole.report("140728", day, 0)
    half = {**counts, "arrivals": {"station": 0, "highway": 0}}
    rest = {**{k: counts[k] for k in ("assigned", "released", "by_rule", "alerts")},
            "arrivals": counts["arrivals"]}
    parts = {"0": half, "1": {**rest, "assigned": {"red": 0, "yellow": 0, "green": 0},
                              "by_rule": {}, "alerts": {}}}
    summed = sum_parts(parts.values())
    assert summed["assigned"] == counts["assigned"] and summed["arrivals"] == counts["arrivals"]
    parts["0"] = half  # the same part again: nothing added
    assert sum_parts(parts.values()) == summed
    report = report_from_counts("140728:2022-08-19", summed, 0)
    assert {k: report[k] for k in ("assigned", "by_rule", "alerts")} == \
        {k: counts[k] for k in ("assigned", "by_rule", "alerts")}
    assert report_from_counts("140702:2022-08-19", None, 0) == whole.report("140702", day, 0)
