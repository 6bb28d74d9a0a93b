"""Daily and zero reports filed live by the workers equal the replay's counts."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from streams.engine import load_policy_dir
from streams.engine.timeutil import parse_date
from streams.recording import read_jsonl
from streams.replay import read_recording
from streams.reports import tally_replay

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
AREAS = "140106,140502,140721"


def without_time(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "generated_at"}


def test_two_workers_file_one_report_per_area_and_day_with_zeros(ns, workers):
    env = {"CHECKPOINT_REPORT_INTERVAL": "0.5", "CHECKPOINT_REPORT_AREAS": AREAS}
    workers(name="r1", env=env)
    workers(name="r2", env=env)
    records = read_jsonl(SCENARIOS / "z22.jsonl")
    ns.feed(records)
    time.sleep(3)  # two report ticks after the last run
    live = [r for r in ns.read(["checkpoint.reports"])]
    parsed, _ = read_recording(orjson.dumps(r) for r in records)
    tally, _ = tally_replay(parsed, load_policy_dir())
    by_key: dict[str, list[dict]] = {}
    for record in live:
        by_key.setdefault(record["key"], []).append(record["value"])
    assert all(len(reports) == 1 for reports in by_key.values()), "one report per area and day"
    for day in ("2022-08-17", "2022-08-18", "2022-08-19"):
        for area in AREAS.split(","):
            expected = tally.report(area, parse_date(day), 0)
            assert without_time(by_key[f"{area}:{day}"][0]) == without_time(expected), (area, day)
    arrivals = by_key["140106:2022-08-17"][0]["arrivals"]
    assert arrivals == {"station": 78, "highway": 0}
    zero = by_key["140721:2022-08-18"][0]
    assert zero["arrivals"] == {"station": 0, "highway": 0} and zero["assigned"]["red"] == 0
