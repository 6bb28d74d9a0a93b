"""`checkpoint-streams policy ...` as an operator uses it: validate, show, list, diff,
back-test (with a known difference) and publish (dry run; the live path is in test_cli_live)."""

from __future__ import annotations

import json

import pytest

from streams import contracts
from streams.engine import load_policy_dir
from streams.policy_tools import apply_publication
from tests.cli.conftest import POLICIES, SCENARIOS, STRICTER_MEDIUM, one_line_error

BAD_POLICY = """\
id: broken-policy
version: 1
title: {zh: 坏, en: broken}
jurisdiction: "1401"
valid_from: "2022-09-01T00:00:00+08:00"
lookback_days: 7
rules:
  - id: R1
    trigger: arrival
    when: {visited_area_level: [extreme]}
    code: red
    measure: {phases: [], release: auto}
    reason: {zh: x, en: x}
"""


@pytest.fixture
def bad_policy(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BAD_POLICY, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- validate
def test_validate_ok(run):
    done = run("policy", "validate", STRICTER_MEDIUM, POLICIES / "shanxi-2022-08-20.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith(
        "taiyuan-2022-09-01 v1, 11 rules, jurisdiction 1401, lookback 7 days; 5/5 cases pass")
    assert len(done.stdout.splitlines()) == 2


def test_validate_checks_every_file_and_fails_with_the_reason(run, bad_policy):
    done = run("policy", "validate", STRICTER_MEDIUM, bad_policy, "/no/such.yaml")
    assert done.returncode == 1
    assert "ok: " in done.stdout
    errors = done.stderr.strip().splitlines()
    assert errors[0].startswith("error: ") and "rules/0/when/visited_area_level/0" in errors[0]
    assert errors[1] == "error: no such policy file: /no/such.yaml"
    assert "Traceback" not in done.stderr


def test_validate_json(run, bad_policy):
    done = run("policy", "validate", STRICTER_MEDIUM, bad_policy, "--json")
    assert done.returncode == 1
    results = json.loads(done.stdout)
    assert [r["ok"] for r in results] == [True, False]
    assert results[0]["policy"] == {"id": "taiyuan-2022-09-01", "version": 1}


def test_a_rule_set_is_not_a_policy(run):
    done = run("policy", "validate", POLICIES / "triggers-2022.yaml")
    assert done.returncode == 1 and "is a rule set, not a policy" in done.stderr


# ----------------------------------------------------------------------- show / list
def test_show_says_each_rule_in_words(run):
    done = run("policy", "show", POLICIES / "taiyuan-2022-08-20.yaml")
    assert done.returncode == 0
    assert "jurisdiction 1401 山西省太原市" in done.stdout
    assert ("TY0820-R2-tibet: on arrival, stayed in Tibet (54 西藏自治区) -> red code, red mark; "
            "3 days centralized isolation + 4 days home health monitoring") in done.stdout
    document = json.loads(run("policy", "show", STRICTER_MEDIUM, "--json").stdout)
    assert document["id"] == "taiyuan-2022-09-01" and "include" not in document


def test_list_marks_what_is_in_force_at_a_time(run):
    done = run("policy", "list", "--at", "2022-08-19T12:00:00+08:00", "--json")
    rows = {r["id"]: r["in_force"] for r in json.loads(done.stdout)}
    assert rows == {"shanxi-2022-01-01-baseline": True, "shanxi-2022-08-20": False,
                    "taiyuan-2022-03-28": True, "taiyuan-2022-08-20": False}
    text = run("policy", "list", "--at", "2022-08-21T00:00:00+08:00").stdout
    assert "taiyuan-2022-08-20 v1  jurisdiction 1401" in text and "[in force]" in text


def test_list_of_a_missing_directory_is_one_line(run):
    done = run("policy", "list", "--policies", "/no/such/dir")
    assert done.returncode == 1
    assert one_line_error(done) == "error: no such policy directory: /no/such/dir"


# ------------------------------------------------------------------------------ diff
def test_diff_in_words_and_exit_code(run):
    done = run("policy", "diff", POLICIES / "taiyuan-2022-08-20.yaml", STRICTER_MEDIUM)
    assert done.returncode == 0
    assert "~ TY0901-R3-medium (was TY0820-R3-medium)" in done.stdout
    assert "    code: yellow code, yellow mark -> red code, red mark" in done.stdout
    assert "= unchanged: TY0901-R1-high (was TY0820-R1-high)" in done.stdout
    assert run("policy", "diff", POLICIES / "taiyuan-2022-08-20.yaml", STRICTER_MEDIUM,
               "--exit-code").returncode == 4


def test_diff_of_identical_policies(run):
    same = POLICIES / "shanxi-2022-08-20.yaml"
    done = run("policy", "diff", same, same, "--exit-code")
    assert done.returncode == 0 and "no differences" in done.stdout


def test_diff_json(run):
    done = run("policy", "diff", POLICIES / "taiyuan-2022-03-28.yaml", POLICIES / "taiyuan-2022-08-20.yaml",
               "--json")
    diff = json.loads(done.stdout)
    assert diff["differs"] is True
    kinds = {c["kind"] for c in diff["changes"]}
    assert {"policy", "added", "removed", "changed", "decides"} <= kinds


def test_diff_of_an_invalid_policy_is_one_line(run, bad_policy):
    done = run("policy", "diff", bad_policy, STRICTER_MEDIUM)
    assert done.returncode == 1
    assert "visited_area_level" in one_line_error(done)


# -------------------------------------------------------------------------- backtest
def test_backtest_summarises_the_known_difference_by_rule(run):
    """Given the Taiyuan 8·20 travellers, When the medium-risk rule turns red, Then exactly
    the medium-risk traveller would get a different code, under that rule."""
    done = run("policy", "backtest", STRICTER_MEDIUM, SCENARIOS / "taiyuan-0820.jsonl")
    assert done.returncode == 0, done.stderr
    assert "7 inputs, 5 persons" in done.stdout
    assert "sets aside: taiyuan-2022-08-20 v1" in done.stdout
    assert "1 would get a different code, 0 the same code with a different measure, 4 unchanged" in done.stdout
    row = next(line for line in done.stdout.splitlines() if "TY0820-R3-medium" in line)
    for cell in ("1", "TY0820-R3-medium", "yellow", "TY0901-R3-medium", "red", "code", "ty-medium-traveller"):
        assert cell in row


def test_backtest_json_and_exit_code(run):
    done = run("policy", "backtest", STRICTER_MEDIUM, SCENARIOS / "taiyuan-0820.jsonl", "--json",
               "--exit-code")
    assert done.returncode == 4
    result = json.loads(done.stdout)
    assert result["different_code"] == 1
    assert result["persons_differing"] == [{
        "person": "ty-medium-traveller",
        "old": {"code": "yellow", "mark": "yellow", "rule": "TY0820-R3-medium", "policy": "taiyuan-2022-08-20",
                "measure": "7 days home isolation; PCR on days 1, 4, 7; landing test; released automatically at the end"},
        "new": {"code": "red", "mark": "red", "rule": "TY0901-R3-medium", "policy": "taiyuan-2022-09-01",
                "measure": "7 days centralized isolation; PCR on days 1, 4, 7; landing test; released automatically at the end"},
    }]


def test_backtest_without_differences_exits_0_with_exit_code(run):
    done = run("policy", "backtest", STRICTER_MEDIUM, SCENARIOS / "pingyao.jsonl", "--exit-code")
    assert done.returncode == 0, done.stdout
    assert "0 would get a different code" in done.stdout


def test_backtest_errors(run, bad_policy):
    assert "/no/such.jsonl" in one_line_error(run("policy", "backtest", STRICTER_MEDIUM, "/no/such.jsonl"))
    done = run("policy", "backtest", bad_policy, SCENARIOS / "z22.jsonl")
    assert done.returncode == 1 and "visited_area_level" in one_line_error(done)
    done = run("policy", "backtest", STRICTER_MEDIUM, SCENARIOS / "z22.jsonl", "--from", "yesterday")
    assert done.returncode == 2 and "not an ISO-8601 time" in one_line_error(done)


# --------------------------------------------------------------------------- publish
def test_publish_dry_run_prints_what_workers_accept(run):
    done = run("policy", "publish", STRICTER_MEDIUM, "--dry-run", "--by", "operator-0042")
    assert done.returncode == 0, done.stderr
    message = json.loads(done.stdout)
    contracts.validator("policy-document").validate(message)
    assert message["published_by"] == "operator-0042"
    book, added = apply_publication(load_policy_dir(), message, key=message["id"])
    assert added is not None and book.get("taiyuan-2022-09-01") is not None


def test_publish_of_an_invalid_policy_sends_nothing(run, bad_policy):
    done = run("policy", "publish", bad_policy, "--broker", "127.0.0.1:1")
    assert done.returncode == 1 and "visited_area_level" in one_line_error(done)


def test_publish_without_a_broker_fails_fast_in_one_line(run):
    done = run("policy", "publish", STRICTER_MEDIUM, "--broker", "127.0.0.1:1", timeout=20)
    assert done.returncode == 1
    assert one_line_error(done).startswith("error: no Kafka broker answers at 127.0.0.1:1")


# ----------------------------------------------------------------------- test cases
@pytest.fixture
def policy_with_a_failing_case(tmp_path):
    """A copy of taiyuan-2022-08-20 whose medium-risk rule gives red, beside its own cases
    (which say yellow, as the notice does)."""
    text = (POLICIES / "taiyuan-2022-08-20.yaml").read_text(encoding="utf-8")
    start = text.index("- id: TY0820-R3-medium")
    head, rule = text[:start], text[start:]
    rule = rule.replace("code: yellow", "code: red", 1)
    policy = tmp_path / "taiyuan-2022-08-20.yaml"
    policy.write_text(head + rule, encoding="utf-8")
    (tmp_path / "taiyuan-2022-08-20.cases.yaml").write_text(
        (POLICIES / "taiyuan-2022-08-20.cases.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "triggers-2022.yaml").write_text(
        (POLICIES / "triggers-2022.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return policy


def test_validate_runs_every_bundled_policys_cases(run):
    done = run("policy", "validate", POLICIES)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("cases pass") == 4
    assert "taiyuan-2022-03-28 v1, 15 rules, jurisdiction 1401, lookback 14 days; 17/17 cases pass" \
        in done.stdout


def test_validate_names_a_failing_case_and_exits_1(run, policy_with_a_failing_case):
    done = run("policy", "validate", policy_with_a_failing_case)
    assert done.returncode == 1
    assert "11/12 cases pass" in done.stderr
    assert "case r3-stayed-in-a-medium-risk-area: change 1 (assign green->red by TY0820-R3-medium): " \
           "to: expected 'yellow', got 'red'" in done.stderr
    as_json = json.loads(run("policy", "validate", policy_with_a_failing_case, "--json").stdout)
    assert as_json[0]["ok"] is False and as_json[0]["cases"]["failed"] == 1


def test_publish_refuses_a_policy_whose_cases_fail(run, policy_with_a_failing_case):
    done = run("policy", "publish", policy_with_a_failing_case, "--dry-run")
    assert done.returncode == 1
    assert one_line_error(done).startswith(
        "error: refused: 1 of 12 test cases of taiyuan-2022-08-20 fail "
        "(r3-stayed-in-a-medium-risk-area)")
    fine = run("policy", "publish", POLICIES / "taiyuan-2022-08-20.yaml", "--dry-run")
    assert fine.returncode == 0, fine.stderr
