"""On the wall clock a person's inputs and the register's raises and exposed trips arrive
in any order across topics (issue 14: live and replay disagreed in these corners): each
raise or exposed trip still reaches the person once, at its own time, whichever came
first. Offline and on the stream clock entries come in order and the flag is off."""

from __future__ import annotations

from streams.engine import Context, Register, process
from streams.engine.evaluate import EXPOSURE, RESULT
from streams.engine.evaluate import SCAN as SCAN_KIND
from tests.builders import POLICIES, result, scan, t

NOTICE = {"id": "nt-late-z22", "event_time": "2022-08-18T09:30:00+08:00", "kind": "exposed_trip",
          "trip": {"mode": "train", "number": "Z22", "date": "2022-08-17"}, "alighting": "1401"}
SCAN = scan("late-passenger", "2022-08-17T21:05:00", "140106", [("140106", "2022-08-17")],
            trip={"mode": "train", "number": "Z22", "date": "2022-08-17", "carriage": "03",
                  "alighting": "140106"})


def ctx(register: Register, now: str, wall: bool) -> Context:
    return Context(register, POLICIES, t(now), catch_up_to_now=wall)


def kinds(events: list) -> list[tuple[str, str | None]]:
    return [(e["kind"], e.get("rule")) for _, e in events]


def test_an_exposed_trip_known_before_the_scan_is_decided_reaches_it():
    register = Register()
    register.apply_exposure(NOTICE)  # its fan-out went out before the passenger's scan
    for wall, expected in ((True, [("assign", "T-exposed-trip")]), (False, [])):
        outcome = process(None, "late-passenger", SCAN_KIND, SCAN,
                          ctx(register, "2022-08-19T10:00:00", wall))
        assert [k for k in kinds(outcome.events) if k[1] == "T-exposed-trip"] == expected
        if wall:
            [change] = [e for _, e in outcome.events if e.get("rule") == "T-exposed-trip"]
            assert change["event_time"] == "2022-08-18T09:30:00+08:00"  # at its own time


def test_an_exposed_trip_learned_after_a_later_input_still_reaches_the_person():
    register = Register()
    first = process(None, "late-passenger", SCAN_KIND, SCAN,
                    ctx(register, "2022-08-17T21:06:00", True)).state
    later = result("late-passenger", "2022-08-19T07:30:00", "2022-08-19T16:00:00")
    state = process(first, "late-passenger", RESULT, later,
                    ctx(register, "2022-08-19T16:01:00", True)).state
    register.apply_exposure(NOTICE)  # event time 08-18, learned after the 08-19 result
    for wall in (True, False):
        outcome = process(state, "late-passenger", EXPOSURE, NOTICE,
                          ctx(register, "2022-08-19T16:02:00", wall))
        if wall:
            assert ("assign", "T-exposed-trip") in kinds(outcome.events)
            again = process(outcome.state, "late-passenger", EXPOSURE, NOTICE,
                            ctx(register, "2022-08-19T16:03:00", True))
            assert again.status == "duplicate" and again.events == []
        else:  # offline order never brings a person past an entry it has not learned
            assert outcome.status == "duplicate"



