"""Engine behaviour: Given a register and a person, When an input, Then events."""

from __future__ import annotations

from pathlib import Path

from streams.engine import Register, process
from streams.engine.evaluate import Context
from streams.engine.state import PersonState
from tests.builders import POLICIES, Person, area_update, register, result, scan, t

MEDIUM_XIAN = area_update("610113", "medium", "2022-08-15T18:00:00")
HIGH_SANYA = area_update("460204", "high", "2022-08-06T12:00:00")


def medium_arrival(person: Person, when: str = "2022-08-21T10:00:00") -> list[dict]:
    return person.send("scan", scan(person.name, when, "140802", [("610113", "2022-08-19")],
                                    kind="highway"))


def test_city_policy_overrides_province_inside_the_city():
    reg = register(MEDIUM_XIAN)
    in_taiyuan = Person(reg).send("scan", scan("p-taiyuan1", "2022-08-21T10:00:00", "140105",
                                               [("610113", "2022-08-19")]))
    in_yuncheng = Person(reg).send("scan", scan("p-yuncheng", "2022-08-21T10:00:00", "140802",
                                                [("610113", "2022-08-19")]))
    assert in_taiyuan[0]["policy"]["id"] == "taiyuan-2022-08-20"
    assert in_yuncheng[0]["policy"]["id"] == "shanxi-2022-08-20"


def test_policy_is_chosen_by_event_time():
    reg = register(area_update("610113", "medium", "2022-08-01"))
    before = Person(reg).send("scan", scan("p-before01", "2022-08-19T23:59:00", "140105",
                                           [("610113", "2022-08-18")]))
    after = Person(reg).send("scan", scan("p-after001", "2022-08-20T00:01:00", "140105",
                                          [("610113", "2022-08-18")]))
    assert before[0]["rule"] == "TY0328-R1-risk-area"
    assert after[0]["rule"] == "TY0820-R3-medium"


def test_no_policy_in_force_records_the_scan_without_a_code():
    person = Person(register(MEDIUM_XIAN))
    assert person.send("scan", scan("p-tibet001", "2022-08-21T10:00:00", "540102",
                                    [("610113", "2022-08-19")])) == []
    assert person.status == "no_policy"
    assert person.state is not None and "610113" in person.state.visits


def test_scan_is_judged_against_levels_in_force_at_its_event_time():
    reg = register(area_update("610113", "medium", "2022-08-15"),
                   area_update("610113", "lifted", "2022-08-22T12:00:00"))
    late = Person(reg).send("scan", scan("p-late0001", "2022-08-22T11:00:00", "140802",
                                         [("610113", "2022-08-19")]))
    after = Person(reg).send("scan", scan("p-after001", "2022-08-22T13:00:00", "140802",
                                          [("610113", "2022-08-19")]))
    assert [e["rule"] for e in late] == ["SX0820-R2-medium"]
    assert [e["rule"] for e in after] == ["SX0820-R4-outside-province"]


def test_travel_outside_the_lookback_window_does_not_count():
    person = Person(register(MEDIUM_XIAN))
    events = person.send("scan", scan("p-window01", "2022-08-25T10:00:00", "140802",
                                      [("610113", "2022-08-17")]))
    assert events == [] and person.status == "unmatched"  # not even "outside the province"


def test_province_level_designation_matches_every_area_inside():
    person = Person(register(area_update("61", "high", "2022-08-15")))
    events = person.send("scan", scan("p-prov0001", "2022-08-21T10:00:00", "140802",
                                      [("610113", "2022-08-19")]))
    assert events[0]["rule"] == "SX0820-R1-high"


def test_strictest_control_wins_and_release_falls_back_to_the_next():
    person = Person(register(MEDIUM_XIAN))
    medium_arrival(person)
    person.send("notice", {"id": "nt-close", "kind": "close_contact", "person": person.name,
                           "event_time": "2022-08-22T10:00:00+08:00"})
    assert person.state.colour == "red"
    for day in range(22, 30):  # daily negative tests satisfy both schedules
        person.send("result", result(person.name, f"2022-08-{day}T09:00:00", f"2022-08-{day}T12:00:00"))
    person.tick("2022-09-02T00:00:00")
    ends = [(e["kind"], e["rule"], e["from"], e["to"]) for e in person.changes()
            if e["kind"] == "release"]
    assert ends == [("release", "SX0820-R2-medium", "red", "red"),
                    ("release", "T-close-contact", "red", "green")]


def test_weaker_rule_never_downgrades_an_active_stricter_control():
    person = Person(register(MEDIUM_XIAN))
    person.send("notice", {"id": "nt-close", "kind": "close_contact", "person": person.name,
                           "event_time": "2022-08-20T10:00:00+08:00", "area": "140802"})
    events = medium_arrival(person)
    assert [(e["kind"], e["from"], e["to"]) for e in events] == [("monitor", "red", "red")]
    assert person.state.colour == "red"


def test_lowering_a_level_never_shortens_a_running_control():
    reg = register(MEDIUM_XIAN)
    person = Person(reg)
    assigned = medium_arrival(person)[0]
    reg.apply_update(area_update("610113", "lifted", "2022-08-22"))
    assert person.tick("2022-08-25T00:00:00") == [] or all(
        e.get("kind") != "release" for e in person.tick("2022-08-25T00:00:00"))
    assert person.state.controls[0].due == t(assigned["release_at"])


def test_same_input_twice_gives_its_events_once():
    person = Person(register(MEDIUM_XIAN))
    first = medium_arrival(person)
    again = medium_arrival(person)
    assert len(first) == 1 and again == []
    assert person.status == "duplicate"


def test_event_ids_are_derived_from_causes():
    reg = register(MEDIUM_XIAN)
    one, two = Person(reg), Person(reg)
    assert medium_arrival(one)[0]["id"] == medium_arrival(two)[0]["id"]


def test_retroactive_raise_reevaluates_a_past_visitor():
    reg = Register()
    person = Person(reg)
    assert [e["rule"] for e in medium_arrival(person)] == ["SX0820-R4-outside-province"]
    raised = area_update("610113", "high", "2022-08-22T08:00:00")
    events = person.send("reevaluate", raised)
    assert [(e["rule"], e["to"]) for e in events] == [("SX0820-R1-high", "red")]
    assert events[0]["caused_by"][0] == raised["id"]
    assert person.send("reevaluate", raised) == []  # redelivered: once


def test_a_raise_reaching_a_visitor_already_judged_with_it_changes_nothing_even_after_release():
    """Live, area work for a raise can arrive after a scan judged with that raise in the
    register (a worker reading the risk-area topic from its start); the replay never
    re-evaluates that scan, so neither may the worker: not while the control runs, not
    after its release."""
    person = Person(register(MEDIUM_XIAN))
    assigned = medium_arrival(person)[0]
    assert MEDIUM_XIAN["id"] in assigned["caused_by"]
    assert person.send("reevaluate", MEDIUM_XIAN) == []
    assert person.status == "duplicate"
    for stamp in ("2022-08-22", "2022-08-25", "2022-08-28"):  # the tests that release it
        person.send("result", result(person.name, f"{stamp}T08:00:00", f"{stamp}T09:00:00"))
    released = person.tick("2022-08-28T10:00:00")
    assert [e["kind"] for e in released if e.get("kind") == "release"] == ["release"]
    assert person.send("reevaluate", MEDIUM_XIAN, now="2022-08-29T00:00:00") == []
    assert person.status == "duplicate"


def test_raise_elsewhere_does_not_touch_a_visitor():
    person = Person(Register())
    medium_arrival(person)
    assert person.send("reevaluate", area_update("460204", "high", "2022-08-22")) == []
    assert person.status == "unmatched"


def test_release_fires_at_due_time_not_before():
    person = Person(register(MEDIUM_XIAN))
    assigned = medium_arrival(person)[0]
    for stamp in ("2022-08-22", "2022-08-25", "2022-08-28"):  # days 1, 4, 7
        person.send("result", result(person.name, f"{stamp}T08:00:00", f"{stamp}T09:00:00"))
    due = assigned["release_at"]
    assert [e for e in person.tick("2022-08-28T09:59:59") if e.get("kind") == "release"] == []
    released = person.tick("2022-08-28T10:00:00")
    assert [(e["kind"], e["to"], e["event_time"]) for e in released] == [("release", "green", due)]


def test_missed_test_alerts_holds_and_a_later_test_makes_up():
    person = Person(register(MEDIUM_XIAN))
    medium_arrival(person)
    person.send("result", result(person.name, "2022-08-22T09:00:00", "2022-08-22T18:00:00"))
    alerts = person.tick("2022-08-26T00:00:00")
    assert [(a["kind"], a["event_time"]) for a in alerts] == [("missed_test", "2022-08-26T00:00:00+08:00")]
    person.send("result", result(person.name, "2022-08-26T09:00:00", "2022-08-26T18:00:00"))
    assert person.tick("2022-08-28T10:00:00") == []  # day-7 test not in yet: waits
    released = person.send("result", result(person.name, "2022-08-28T09:00:00", "2022-08-28T15:00:00"))
    assert [(e["kind"], e["to"]) for e in released] == [("release", "green")]


def test_missed_test_not_made_up_holds_past_due_until_an_operator_acts():
    person = Person(register(MEDIUM_XIAN))
    medium_arrival(person)
    person.tick("2022-08-29T00:00:00")
    kinds = [a["kind"] for a in person.alerts()]
    assert kinds.count("missed_test") == 3 and person.state.colour == "yellow"
    events = person.send("command", {"id": "cmd-1", "person": person.name, "operator": "op-7",
                                     "reason": "tests verified by phone", "action": "resolve_missed_test",
                                     "event_time": "2022-08-29T09:00:00+08:00"})
    assert [(e["kind"], e["to"]) for e in events] == [("release", "green")]


def test_positive_result_holds_release_and_operator_needs_override():
    person = Person(register(MEDIUM_XIAN))
    medium_arrival(person)
    person.send("result", result(person.name, "2022-08-22T09:00:00", "2022-08-22T18:00:00", "positive"))
    assert person.state.colour == "red"
    command = {"id": "cmd-2", "person": person.name, "operator": "op-7", "reason": "retest negative",
               "action": "release", "event_time": "2022-08-30T09:00:00+08:00"}
    rejected = person.send("command", command)
    assert [e["kind"] for e in rejected][-1] == "command_rejected"
    assert person.state.colour == "red"
    released = person.send("command", {**command, "id": "cmd-3", "override": True})
    assert {(e["kind"], e["command"]["operator"]) for e in released if "command" in e} == {("release", "op-7")}
    assert person.state.colour == "green"


def test_yellow_released_after_two_negatives_inside_72_hours():
    person = Person(register(area_update("610113", "medium", "2022-04-01")))
    person.send("scan", scan(person.name, "2022-04-10T10:00:00", "140106", [("610112", "2022-04-08")]))
    assert person.state.colour == "yellow"
    assert person.send("result", result(person.name, "2022-04-11T09:00:00", "2022-04-11T18:00:00")) == []
    released = person.send("result", result(person.name, "2022-04-12T09:00:00", "2022-04-12T18:00:00"))
    assert [(e["kind"], e["rule"], e["to"]) for e in released] == [
        ("release", "TY0328-R4-affected-city", "green")]


def test_yellow_test_outside_the_window_does_not_count():
    person = Person(register(area_update("610113", "medium", "2022-04-01")))
    person.send("scan", scan(person.name, "2022-04-10T10:00:00", "140106", [("610112", "2022-04-08")]))
    person.send("result", result(person.name, "2022-04-11T09:00:00", "2022-04-11T18:00:00"))
    late = person.send("result", result(person.name, "2022-04-13T10:00:01", "2022-04-13T18:00:00"))
    assert [e["kind"] for e in late] == ["hold_release"]  # the window closed first
    assert person.state.colour == "yellow"


def test_big_data_push_stays_yellow_until_an_operator_reclassifies():
    person = Person()
    person.send("notice", {"id": "nt-bd", "kind": "big_data_push", "person": person.name,
                           "event_time": "2022-08-21T10:00:00+08:00", "area": "140105"})
    assert person.tick("2022-09-30T00:00:00") == [] and person.state.colour == "yellow"
    events = person.send("command", {"id": "cmd-4", "person": person.name, "operator": "op-1",
                                     "reason": "excluded after verification", "action": "reclassify",
                                     "rule": "green", "event_time": "2022-08-22T10:00:00+08:00"})
    assert [(e["kind"], e["from"], e["to"], e["command"]["id"]) for e in events] == [
        ("reclassify", "yellow", "green", "cmd-4")]


def test_operator_reclassifies_to_a_named_rule_and_extends():
    person = Person()
    person.send("notice", {"id": "nt-bd", "kind": "big_data_push", "person": person.name,
                           "event_time": "2022-08-21T10:00:00+08:00", "area": "140105"})
    events = person.send("command", {"id": "cmd-5", "person": person.name, "operator": "op-1",
                                     "reason": "confirmed stay in Sanya high-risk area",
                                     "action": "reclassify", "rule": "TY0820-R1-high",
                                     "event_time": "2022-08-22T10:00:00+08:00"})
    assert [(e["kind"], e["to"]) for e in events] == [("reclassify", "green"), ("assign", "red")]
    due = person.state.controls[0].due
    extended = person.send("command", {"id": "cmd-6", "person": person.name, "operator": "op-1",
                                       "reason": "household case", "action": "extend", "days": 3,
                                       "event_time": "2022-08-23T10:00:00+08:00"})
    assert extended[0]["kind"] == "extend"
    assert person.state.controls[0].due == due + 3 * 86_400_000


def test_three_code_check_alerts_when_shown_code_is_less_strict():
    person = Person(register(MEDIUM_XIAN))
    person.send("notice", {"id": "nt-close", "kind": "close_contact", "person": person.name,
                           "event_time": "2022-08-20T10:00:00+08:00", "area": "140802"})
    events = person.send("scan", scan(person.name, "2022-08-21T10:00:00", "140802", [], kind="highway",
                                      three_codes={"health_code": "green", "itinerary_star": False}))
    assert [(e["kind"], e["severity"]) for e in events if "severity" in e] == [("three_code_mismatch", "page")]


def test_three_code_check_alerts_on_an_unexplained_star_only():
    reg = register(MEDIUM_XIAN)
    explained = Person(reg).send("scan", scan("p-star0001", "2022-08-21T10:00:00", "140802",
                                              [("610112", "2022-08-19")], kind="highway",
                                              three_codes={"health_code": "green", "itinerary_star": True}))
    unexplained = Person(reg).send("scan", scan("p-star0002", "2022-08-21T10:00:00", "140802",
                                                [("110105", "2022-08-19")], kind="highway",
                                                three_codes={"health_code": "green", "itinerary_star": True}))
    assert not [e for e in explained if e.get("kind") == "three_code_mismatch"]
    assert [e["kind"] for e in unexplained if "severity" in e] == ["three_code_mismatch"]


def test_blue_mark_is_monitoring_without_a_code_change():
    person = Person(register(HIGH_SANYA))
    events = person.send("scan", scan(person.name, "2022-08-21T12:00:00", "140105", [("460202", "2022-08-19")]))
    assert [(e["kind"], e["from"], e["to"], e["mark"]) for e in events] == [("mark", "green", "green", "blue")]
    assert (person.state.colour, person.state.mark) == ("green", "blue")


def test_state_round_trips_through_json():
    person = Person(register(MEDIUM_XIAN))
    medium_arrival(person)
    assert PersonState.from_json(person.state.to_json()) == person.state


def test_process_is_pure_given_the_same_inputs():
    reg = register(MEDIUM_XIAN)
    value = scan("p-pure0001", "2022-08-21T10:00:00", "140802", [("610113", "2022-08-19")])
    ctx = Context(reg, POLICIES, t("2022-08-21T10:00:01"))
    assert process(None, "p-pure0001", "scan", value, ctx).events == \
        process(None, "p-pure0001", "scan", value, ctx).events


def test_ids_never_hold_a_run_of_18_digits():
    """An output id must pass the same identity-number checks as any input."""
    import re

    from streams.engine.evaluate import digest

    ids = [digest("person", n) for n in range(20_000)]
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) and not re.search(r"[0-9]{8}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_stored_record_leaves_out_defaults_and_decodes_to_the_same_state():
    """The person table's rows (`streams.runtime.states.encode`) leave out every field at
    its default; a row decodes to the state it was made from, as does a row written with
    every field (before 2026-12-04)."""
    import orjson

    from streams.replay import replay_file
    from streams.runtime.states import decode, encode

    scenarios = Path(__file__).resolve().parent.parent / "scenarios"
    states = [s for name in ("z22", "pingyao", "yellow-tests")
              for s in replay_file(scenarios / f"{name}.jsonl").states.values()]
    assert any(s.controls for s in states) and any(not s.controls for s in states)
    for state in states:
        row, full = encode(state), orjson.dumps(state)
        assert decode(row) == state and decode(full) == state
        assert len(row) < len(full)
        stored = orjson.loads(row)
        assert ("results" in stored) == bool(state.results)
        assert ("colour" in stored) == (state.colour != "green")
        for control in stored.get("controls", []):
            assert "window_alerted" not in control or control["window_alerted"]
    assert encode(PersonState("p-quiet")) == b'{"person":"p-quiet"}'
