"""The policy lifecycle as pure functions: diff in words, back-test, publish and apply."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from streams import contracts
from streams.engine import PolicyError, load_policy, load_policy_dir
from streams.engine.timeutil import parse_ts
from streams.policy_tools import (
    apply_publication,
    backtest,
    describe_rule,
    diff_policies,
    policy_document,
    policy_from_document,
    publication,
    read_publication,
)
from streams.replay import read_recording
from tests.cli.conftest import POLICIES, SCENARIOS, STRICTER_MEDIUM

NOW = parse_ts("2022-08-29T16:30:00+08:00")


def taiyuan_0820():
    return load_policy(POLICIES / "taiyuan-2022-08-20.yaml")


def recording(name: str):
    with open(SCENARIOS / f"{name}.jsonl", "rb") as handle:
        return read_recording(handle)


# ------------------------------------------------------------------------------- diff
def test_diff_names_the_one_changed_rule_in_words_and_pairs_renamed_rules():
    diff = diff_policies(taiyuan_0820(), load_policy(STRICTER_MEDIUM))
    changed = [c for c in diff.changes if c.kind == "changed"]
    assert [(c.old, c.rule) for c in changed] == [("TY0820-R3-medium", "TY0901-R3-medium")]
    assert changed[0].details[0] == "code: yellow code, yellow mark -> red code, red mark"
    assert changed[0].details[1].startswith("measure: 7 days home isolation")
    assert "-> 7 days centralized isolation" in changed[0].details[1]
    assert not [c for c in diff.changes if c.kind in ("added", "removed", "moved", "decides")]
    assert "TY0901-R1-high (was TY0820-R1-high)" in diff.unchanged
    assert {c.words.split(":")[0] for c in diff.changes if c.kind == "policy"} == {"id", "in force", "title"}


def test_diff_of_the_2022_taiyuan_versions_reads_like_the_notices():
    old = load_policy(POLICIES / "taiyuan-2022-03-28.yaml")
    diff = diff_policies(old, taiyuan_0820())
    words = [c.words for c in diff.changes]
    assert "lookback: 14 days -> 7 days" in words
    assert any(w.startswith("added TY0820-R2-tibet: on arrival, stayed in Tibet") for w in words)
    assert any(w.startswith("removed TY0328-R1-risk-area: on arrival, stayed in a high- or medium-risk "
                            "area -> red code, red mark; 14 days centralized isolation + 7 days home "
                            "isolation") for w in words)
    # the city rule's own companion rule is gone: the shared trigger rule decides now
    decides = [c for c in diff.changes if c.kind == "decides"]
    assert {(c.old, c.rule) for c in decides} == {("TY0328-R7-companion", "T-companion"),
                                                  ("TY0328-R8-big-data", "T-big-data-push")}


def test_diff_reports_a_changed_first_match_order():
    policy = taiyuan_0820()
    rules = list(policy.rules)
    rules[0], rules[2] = rules[2], rules[0]  # medium before high: high travellers turn yellow
    swapped = dataclasses.replace(policy, rules=tuple(rules), _by_id={})
    moved = [c for c in diff_policies(policy, swapped).changes if c.kind == "moved"]
    assert len(moved) == 1 and "TY0820-R3-medium, TY0820-R2-tibet, TY0820-R1-high" in moved[0].words


def test_a_policy_compared_with_itself_has_no_differences():
    assert not diff_policies(taiyuan_0820(), taiyuan_0820()).differs


def test_rules_in_words():
    policy = taiyuan_0820()
    assert describe_rule(policy.rule("TY0820-R4-hainan")) == (
        "on arrival, stayed in Hainan (46 海南省) -> green code, blue mark; 3 days home health "
        "monitoring; PCR on days 1, 2, 3; landing test; released automatically at the end")
    old = load_policy(POLICIES / "taiyuan-2022-03-28.yaml")
    assert describe_rule(old.rule("TY0328-R4-affected-city")).endswith(
        "3 days community management; landing test; released after 2 negative tests within 72 h")


# --------------------------------------------------------------------------- backtest
def test_backtest_finds_exactly_the_known_difference():
    """Given the 8·20 Taiyuan travellers, When medium-risk stays turn red, Then only the
    medium-risk traveller gets a different code, by that rule."""
    records, dead = recording("taiyuan-0820")
    result = backtest(records, load_policy_dir(), load_policy(STRICTER_MEDIUM), dead_letters=len(dead))
    assert result.replaced == ["taiyuan-2022-08-20 v1"]
    assert result.persons == 5
    assert [(p, b.label, a.label) for p, b, a in result.differences()] == [
        ("ty-medium-traveller", "yellow", "red")]
    assert result.by_rule() == [{
        "old_rule": "TY0820-R3-medium", "old_code": "yellow", "new_rule": "TY0901-R3-medium",
        "new_code": "red", "code_differs": True, "measure_differs": True, "persons": 1,
        "examples": ["ty-medium-traveller"]}]
    summary = result.to_json()
    assert (summary["different_code"], summary["different_measure_only"], summary["unchanged"]) == (1, 0, 4)


def test_backtest_of_an_unchanged_policy_finds_nothing():
    records, _ = recording("taiyuan-0820")
    same = dataclasses.replace(taiyuan_0820(), id="taiyuan-2022-09-01", _by_id={})
    assert backtest(records, load_policy_dir(), same).differences() == []


def test_backtest_of_a_policy_elsewhere_changes_nobody_here():
    records, _ = recording("taiyuan-0820")
    elsewhere = dataclasses.replace(load_policy(STRICTER_MEDIUM), jurisdiction="1407", _by_id={})
    result = backtest(records, load_policy_dir(), elsewhere)
    assert result.differences() == [] and result.replaced == []


# ------------------------------------------------------------------------- publishing
def test_publication_is_valid_self_contained_and_round_trips():
    policy = load_policy(STRICTER_MEDIUM)
    message = publication(policy, "operator-0042", NOW)
    contracts.validator("policy-document").validate(message)
    assert "include" not in message["policy"]
    assert {r["id"] for r in message["policy"]["rules"]} >= {"TY0901-R3-medium", "T-exposed-trip"}
    again = read_publication(orjson.dumps(message))
    assert again.rules == policy.rules and again.valid_from == policy.valid_from
    assert policy_document(again) == message["policy"]


@pytest.mark.parametrize(("tamper", "error"), [
    (lambda m: m["policy"]["rules"][0].update(code="orange"), "policy/rules/0/code"),
    (lambda m: m["policy"]["rules"][0].update(code="yellow"), "digest does not match"),
    (lambda m: m.update(version=2), "envelope and document name different policies"),
    (lambda m: m.pop("digest"), "'digest' is a required property"),
])
def test_a_bad_publication_is_refused_with_one_reason(tamper, error):
    message = publication(load_policy(STRICTER_MEDIUM), "operator-0042", NOW)
    tamper(message)
    with pytest.raises(PolicyError, match=error):
        read_publication(message)


def test_a_published_document_may_not_include_rule_sets():
    document = policy_document(load_policy(STRICTER_MEDIUM))
    with pytest.raises(PolicyError, match="self-contained"):
        policy_from_document({**document, "include": ["triggers-2022"]})


def test_apply_publication_schedules_a_switch_at_valid_from():
    """Given the bundled policies, When the stricter Taiyuan policy is published, Then the
    old policy governs until its valid_from and the new one from that instant on."""
    book = load_policy_dir()
    new = load_policy(STRICTER_MEDIUM)
    message = orjson.dumps(publication(new, "operator-0042", NOW))
    updated, added = apply_publication(book, message, key=b"taiyuan-2022-09-01")
    assert added is not None and added.id == "taiyuan-2022-09-01"
    before, at = parse_ts("2022-08-31T23:59:59+08:00"), parse_ts("2022-09-01T00:00:00+08:00")
    assert updated.in_force("140105", before).id == "taiyuan-2022-08-20"
    assert updated.in_force("140105", at).id == "taiyuan-2022-09-01"
    assert updated.in_force("140728", at).id == "shanxi-2022-08-20"  # outside Taiyuan
    # redelivery and older versions change nothing
    assert apply_publication(updated, message)[1] is None
    assert apply_publication(updated, None) == (updated, None)


def test_a_newer_version_replaces_and_an_older_one_is_ignored():
    book = load_policy_dir()
    v2 = dataclasses.replace(taiyuan_0820(), version=2, lookback_days=10, _by_id={})
    book2, added = apply_publication(book, publication(v2, "op", NOW))
    assert added is not None and book2.get("taiyuan-2022-08-20").lookback_days == 10
    assert book2.get("taiyuan-2022-08-20", 1) is None
    assert apply_publication(book2, publication(taiyuan_0820(), "op", NOW)) == (book2, None)
    reused = dataclasses.replace(v2, lookback_days=12, _by_id={})
    with pytest.raises(PolicyError, match="version already in force with different content"):
        apply_publication(book2, publication(reused, "op", NOW))


def test_the_key_must_be_the_policy_id():
    message = publication(load_policy(STRICTER_MEDIUM), "op", NOW)
    with pytest.raises(PolicyError, match="key 'taiyuan' is not the policy id"):
        apply_publication(load_policy_dir(), message, key="taiyuan")
