"""A person's status for people and scripts: current code, active controls with due
times, test schedule, results, history with causes.

Computed from the engine's state by the engine's own rules (a control's test days and
when each ends), once, where the state is: the worker's `/persons/{person}` view serves
it, and `checkpoint-streams status` prints it from there or from a replay. Nothing reads
raw state JSON to re-derive a schedule.
"""

from __future__ import annotations

from typing import Any

from .engine import PersonState
from .engine.timeutil import day_start, format_date, format_ts, local_day
from .policy_tools import measure_words


def person_status(state: PersonState, as_of: int) -> dict[str, Any]:
    today = local_day(as_of)
    controls, tests = [], []
    for control in state.controls:
        needed = control.measure.get("tests") or {}
        controls.append({
            "control": control.id, "policy": control.policy, "version": control.policy_version,
            "rule": control.rule, "colour": control.colour, "mark": control.mark,
            "measure": measure_words(control.measure), "started": format_ts(control.started),
            "due": format_ts(control.due) if control.due is not None else None,
            "release": control.release, "hold": control.hold,
            "negatives": (f"{len(control.negatives)} of {needed.get('count')}"
                          if control.release == "tests" else None),
            "caused_by": list(control.caused_by),
        })
        for day in control.pcr_days:
            date = control.start_day + day
            if day in control.satisfied:
                status = "done"
            elif day in control.missed or control.day_end(day) <= as_of:
                status = "missed"
            elif date == today:
                status = "due today"
            else:
                status = "upcoming"
            tests.append({"control": control.id, "rule": control.rule, "day": day,
                          "date": format_date(date), "status": status,
                          "from": format_ts(day_start(date))})
    tests.sort(key=lambda t: (t["date"], t["rule"]))
    arrival = state.arrival
    return {
        "person": state.person,
        "code": state.colour,
        "mark": state.mark,
        "as_of": format_ts(as_of),
        "positive": state.positive,
        "arrival": None if not arrival else {
            "scan": arrival.get("scan"), "checkpoint": arrival.get("checkpoint"),
            "kind": arrival.get("kind"), "area": arrival.get("area"),
            "at": format_ts(arrival["at"]) if arrival.get("at") is not None else None},
        "controls": controls,
        "tests": tests,
        "results": [{"id": r["id"], "collected": format_ts(r["collected"]), "result": r["result"],
                     "tube": r.get("tube")} for r in state.results],
        "history": [{"at": h["at"], "kind": h["kind"], "from": h["from"], "to": h["to"],
                     "rule": h["rule"], "caused_by": h.get("caused_by", []), "id": h["id"]}
                    for h in state.history],
    }
