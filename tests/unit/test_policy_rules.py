"""One test per policy row (DOMAIN.md tables): removing or changing a rule fails here."""

from __future__ import annotations

from typing import Any

import pytest

from streams.engine.evaluate import first_match
from tests.builders import POLICIES, Person, area_update, register, scan, t

TY0328 = ("2022-04-10T10:00:00", "140106")  # Taiyuan station, under Taiyuan 3·28
SX0820 = ("2022-08-25T10:00:00", "140802")  # Yuncheng Yanhu, under Shanxi 8·20
TY0820 = ("2022-08-25T10:00:00", "140105")  # Taiyuan Xiaodian, under Taiyuan 8·20

# (rule id, where/when, register updates, travel, extra scan fields,
#  expected kind, colour, mark, phases as (kind, days), pcr days)
ARRIVAL_CASES: list[tuple[Any, ...]] = [
    ("TY0328-R1-risk-area", TY0328, [("610113", "high", "2022-04-01")], [("610113", "2022-04-05")], {},
     "assign", "red", "red", [("centralized_isolation", 14), ("home_isolation", 7)], []),
    ("TY0328-R1-risk-area", TY0328, [("610113", "medium", "2022-04-01")], [("610113", "2022-04-05")], {},
     "assign", "red", "red", [("centralized_isolation", 14), ("home_isolation", 7)], []),
    ("TY0328-R2-risk-county", TY0328, [("610113001", "high", "2022-04-01")], [("610113", "2022-04-05")], {},
     "assign", "red", "red", [("home_isolation", 14), ("home_health_monitoring", 7)], []),
    ("TY0328-R3-cases-county", TY0328, [("610113", "cases", "2022-04-01")], [("610113", "2022-04-05")], {},
     "assign", "red", "red", [("home_isolation", 7), ("home_health_monitoring", 5)], []),
    ("TY0328-R4-affected-city", TY0328, [("610113", "medium", "2022-04-01")], [("610112", "2022-04-05")], {},
     "assign", "yellow", "yellow", [("community_management", 3)], []),
    ("TY0328-R5-abroad-14", TY0328, [], [("440305", "2022-04-08")],
     {"inbound": {"quarantine_days": 14, "entry_area": "440305"}},
     "assign", "red", "red", [("centralized_isolation", 7), ("home_isolation", 7)], []),
    ("TY0328-R6-abroad-21", TY0328, [], [("440305", "2022-04-08")],
     {"inbound": {"quarantine_days": 21, "entry_area": "440305"}},
     "assign", "red", "red", [("home_isolation", 7)], []),
    ("SX0820-R1-high", SX0820, [("610113", "high", "2022-08-20")], [("610113", "2022-08-22")], {},
     "assign", "red", "red", [("centralized_isolation", 7)], [1, 2, 3, 5, 7]),
    ("SX0820-R2-medium", SX0820, [("610113", "medium", "2022-08-20")], [("610113", "2022-08-22")], {},
     "assign", "yellow", "yellow", [("home_isolation", 7)], [1, 4, 7]),
    ("SX0820-R3-low-affected", SX0820, [("610113", "medium", "2022-08-20")], [("610112", "2022-08-22")], {},
     "monitor", "green", None, [("home_health_monitoring", 3)], [1, 2]),
    ("SX0820-R4-outside-province", SX0820, [], [("110105", "2022-08-22")], {},
     "monitor", "green", None, [("self_health_monitoring", 3)], []),
    ("TY0820-R1-high", TY0820, [("460204", "high", "2022-08-06")], [("460204", "2022-08-22")], {},
     "assign", "red", "red", [("centralized_isolation", 7)], [1, 2, 3, 5, 7]),
    ("TY0820-R2-tibet", TY0820, [], [("540102", "2022-08-22")], {},
     "assign", "red", "red", [("centralized_isolation", 3), ("home_health_monitoring", 4)], [1, 2, 3, 5, 7]),
    ("TY0820-R3-medium", TY0820, [("610113", "medium", "2022-08-20")], [("610113", "2022-08-22")], {},
     "assign", "yellow", "yellow", [("home_isolation", 7)], [1, 4, 7]),
    ("TY0820-R4-hainan", TY0820, [("460204", "high", "2022-08-06")], [("460202", "2022-08-22")], {},
     "mark", "green", "blue", [("home_health_monitoring", 3)], [1, 2, 3]),
    ("TY0820-R5-outside-province", TY0820, [], [("110105", "2022-08-22")], {},
     "monitor", "green", None, [("self_health_monitoring", 3)], [1, 2]),
]


@pytest.mark.parametrize(
    ("rule", "where", "updates", "travel", "extra", "kind", "colour", "mark", "phases", "pcr_days"),
    ARRIVAL_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(ARRIVAL_CASES)],
)
def test_arrival_rule(rule, where, updates, travel, extra, kind, colour, mark, phases, pcr_days):
    when, checkpoint = where
    person = Person(register(*(area_update(*u) for u in updates)))
    events = person.send("scan", scan("person-0001", when, checkpoint, travel, **extra))
    assert len(events) == 1, events
    event = events[0]
    assert event["rule"] == rule
    assert (event["kind"], event["to"], event["mark"]) == (kind, colour, mark)
    assert [(p["kind"], p["days"]) for p in event["measure"]["phases"]] == phases
    assert event["measure"]["pcr_days"] == pcr_days
    days = sum(d for _, d in phases)
    if event["measure"]["release"] == "auto":
        assert event["release_at"] is not None
        assert t(event["release_at"]) - t(when) == days * 86_400_000
    assert event["caused_by"][0].startswith("scan-")


def test_taiyuan_0328_landing_test_row_starts_no_control():
    """TY0328-R9: every arrival from outside the province gets a landing test, no code."""
    person = Person()
    events = person.send("scan", scan("person-0001", TY0328[0], TY0328[1], [("110105", "2022-04-08")]))
    assert events == []
    policy = POLICIES.in_force("140106", t(TY0328[0]))
    assert policy is not None
    found = first_match(policy, "arrival", ["110105"], person.register, t(TY0328[0]))
    assert found is not None and found[0].id == "TY0328-R9-landing-test"
    assert found[0].measure.landing_test


# (rule id, policy in force where/when, notice kind)
NOTICE_CASES = [
    ("TY0328-R7-companion", TY0328, "companion", "yellow", [("home_health_monitoring", 7), ("self_health_monitoring", 3)]),
    ("TY0328-R8-big-data", TY0328, "big_data_push", "yellow", [("verification", 1)]),
    ("T-companion", SX0820, "companion", "yellow", [("home_health_monitoring", 7), ("self_health_monitoring", 3)]),
    ("T-big-data-push", SX0820, "big_data_push", "yellow", [("verification", 1)]),
    ("T-close-contact", SX0820, "close_contact", "red", [("centralized_isolation", 7), ("home_health_monitoring", 3)]),
    ("T-secondary-contact", TY0820, "secondary_contact", "red", [("centralized_isolation", 7)]),
]


@pytest.mark.parametrize(("rule", "where", "kind", "colour", "phases"), NOTICE_CASES,
                         ids=[c[0] for c in NOTICE_CASES])
def test_notice_rule(rule, where, kind, colour, phases):
    when, area = where
    person = Person()
    events = person.send("notice", {"id": f"nt-{rule}", "kind": kind, "person": "person-0001",
                                    "event_time": when + "+08:00", "area": area})
    assert [(e["rule"], e["to"]) for e in events] == [(rule, colour)]
    assert [(p["kind"], p["days"]) for p in events[0]["measure"]["phases"]] == phases


def test_positive_result_rule_turns_red_and_alerts():
    person = Person()
    person.send("scan", scan("person-0001", SX0820[0], SX0820[1], []))
    events = person.send("result", {
        "id": "rs-1", "kind": "single", "person": "person-0001", "sample": "S1",
        "collected_at": "2022-08-25T12:00:00+08:00", "event_time": "2022-08-25T20:00:00+08:00",
        "result": "positive"})
    change = [e for e in events if "rule" in e and e.get("kind") == "assign"]
    assert [(e["rule"], e["to"], e["measure"]["release"]) for e in change] == [
        ("T-positive", "red", "operator")]
    assert [e["kind"] for e in person.alerts()] == ["positive_result"]


def test_exposed_trip_rule_reaches_a_passenger():
    person = Person()
    person.send("scan", scan("person-0001", "2022-08-17T21:00:00", "140106", [("610113", "2022-08-16")],
                             trip={"mode": "train", "number": "Z22", "date": "2022-08-17",
                                   "alighting": "140106"}))
    events = person.send("exposure", {
        "id": "nt-z22", "kind": "exposed_trip", "event_time": "2022-08-18T09:30:00+08:00",
        "trip": {"mode": "train", "number": "Z22", "date": "2022-08-17"}, "alighting": "1401"})
    assert [(e["rule"], e["to"]) for e in events] == [("T-exposed-trip", "red")]
    assert events[0]["caused_by"] == ["nt-z22", "scan-person-0001-2022-08-17T21:00:00"]


def test_every_rule_of_every_policy_has_a_test():
    covered = {c[0] for c in ARRIVAL_CASES} | {c[0] for c in NOTICE_CASES} | {
        "TY0328-R9-landing-test", "T-positive", "T-exposed-trip"}
    rules = {rule.id for policy in POLICIES.policies for rule in policy.rules}
    assert rules - covered == set(), "rules without a test"
