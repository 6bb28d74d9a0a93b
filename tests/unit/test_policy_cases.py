"""Every bundled policy carries test cases from its notice, and they pass (issue 15).

The cases run through the whole offline pipeline with only their policy in force, so a
change to the engine, the gate or a policy file that breaks what a notice says fails
here, named by the case and the notice's words.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from streams.engine import load_policy_dir
from streams.engine.policy import POLICY_DIR, PolicyError, load_policy
from streams.policy_cases import (
    cases_path,
    check_policy_file,
    load_cases,
    policy_files,
    run_case,
    run_cases,
)

POLICY_FILES = policy_files(POLICY_DIR)
#: the three notices' policies: each needs the edges the issue names
NOTICES = ("taiyuan-2022-03-28", "shanxi-2022-08-20", "taiyuan-2022-08-20")
EDGES = ("lookback-last-day-inside", "lookback-first-day-outside", "the-day-before-the-notice",
         "the-notice-s-first-valid-day")


def test_every_bundled_policy_has_cases():
    assert [p.stem for p in POLICY_FILES] == sorted(p.id for p in load_policy_dir().policies)
    assert all(cases_path(p).is_file() for p in POLICY_FILES)


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.stem)
def test_bundled_cases_pass(path: Path):
    report = check_policy_file(path, load_policy(path))
    assert report is not None
    assert report.ok, [(r.name, r.problems) for r in report.failed]
    assert report.uncovered == []


def test_every_rule_of_every_bundled_policy_has_a_case():
    """Included rule sets too: the triggers are covered once, in the baseline's cases."""
    covered = {case.get("rule") for path in POLICY_FILES
               for case in load_cases(cases_path(path))["cases"]}
    rules = {rule.id for policy in load_policy_dir().policies for rule in policy.rules}
    assert rules - covered == set()


@pytest.mark.parametrize("policy_id", NOTICES)
def test_each_notice_has_its_edges(policy_id: str):
    names = {case["name"] for case in load_cases(POLICY_DIR / f"{policy_id}.cases.yaml")["cases"]}
    assert set(EDGES) <= names
    assert any(name.startswith("checkpoint-inside") for name in names)
    assert any(name.startswith("checkpoint-outside") for name in names)


def _case(policy_id: str, name: str) -> dict:
    document = load_cases(POLICY_DIR / f"{policy_id}.cases.yaml")
    return copy.deepcopy(next(c for c in document["cases"] if c["name"] == name))


def test_a_lookback_counts_dates_ending_with_the_arrival_day():
    """"7天内": 7 calendar dates, the arrival's date and the 6 before it, whatever the hour."""
    policy = load_policy(POLICY_DIR / "shanxi-2022-08-20.yaml")
    inside = _case("shanxi-2022-08-20", "lookback-last-day-inside")
    assert inside["inputs"][1]["station"]["travel"] == {"610113001": "2022-08-15"}
    assert run_case(policy, inside).ok  # scan 08-21 23:59: 08-15 is the 7th date
    outside = _case("shanxi-2022-08-20", "lookback-first-day-outside")
    assert outside["inputs"][1]["station"]["travel"] == {"610113001": "2022-08-14"}
    assert run_case(policy, outside).ok  # scan 08-21 00:00: 08-14 would be the 8th
    outside["expect"] = inside["expect"]
    outside.pop("outcomes")
    assert not run_case(policy, outside).ok


def test_a_wrong_expectation_is_named():
    policy = load_policy(POLICY_DIR / "taiyuan-2022-08-20.yaml")
    case = _case("taiyuan-2022-08-20", "r3-stayed-in-a-medium-risk-area")
    case["expect"][0]["code"] = "red"
    case["expect"][0]["measure"]["pcr_days"] = [1, 2]
    result = run_case(policy, case)
    assert not result.ok
    assert "change 1 (assign green->yellow by TY0820-R3-medium): to: expected 'red', got 'yellow'" \
        in result.problems
    assert any(p.startswith("change 1") and "measure.pcr_days" in p for p in result.problems)


def test_a_missing_or_extra_change_is_named():
    policy = load_policy(POLICY_DIR / "taiyuan-2022-08-20.yaml")
    case = _case("taiyuan-2022-08-20", "lookback-first-day-outside")
    case["expect"] = [{"code": "red"}]
    assert run_case(policy, case).problems[-1].startswith("expected 1 code change(s), got 0")


def test_an_input_the_gate_refuses_fails_the_case():
    policy = load_policy(POLICY_DIR / "taiyuan-2022-08-20.yaml")
    case = _case("taiyuan-2022-08-20", "r2-stayed-in-tibet")
    case["inputs"][0]["station"]["person"] = "14010519900101123X"  # shaped like an ID number
    problems = run_case(policy, case).problems
    assert any("dead-lettered" in p for p in problems)


def test_cases_for_another_policy_are_refused():
    policy = load_policy(POLICY_DIR / "taiyuan-2022-08-20.yaml")
    with pytest.raises(PolicyError, match="not taiyuan-2022-08-20"):
        run_cases(policy, load_cases(POLICY_DIR / "shanxi-2022-08-20.cases.yaml"))


def test_a_malformed_cases_file_is_refused_with_where(tmp_path: Path):
    document = load_cases(POLICY_DIR / "taiyuan-2022-08-20.cases.yaml")
    document["cases"][2]["expect"][0]["colour"] = "red"
    bad = tmp_path / "taiyuan-2022-08-20.cases.yaml"
    bad.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"cases/2/expect/0: .*colour"):
        load_cases(bad)


def test_the_policy_directory_loader_skips_cases_files():
    assert all(not p.path.endswith(".cases.yaml") for p in load_policy_dir().policies)
