"""Recordings for property tests: every kind of input, in the shapes producers send them.

Hypothesis draws a plan (a seed and the proportions of each kind of input); `expand`
turns it into a recording deterministically, so that a plan of a few numbers stands for
thousands of records and shrinks well. What a recording holds: scans at stations and
highway exits (travel histories through designated areas, trains, the three-code check),
raises and lowerings of the register (some retroactive: effective days before they are
published), single and pooled PCR results (some reported days after collection), contact
notices and exposed trips, operator commands, and inputs sent twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from streams.engine.timeutil import DAY_MS, HOUR_MS, format_date, format_ts, local_day, parse_ts

START = parse_ts("2022-08-15T00:00:00+08:00")
DAYS = 10
#: outside the province (designated and raised in the run), and Shanxi's checkpoints
AWAY = ("610113", "610112", "460204", "540102", "110105", "130102", "410102", "150102")
CHECKPOINTS = (("140105", "station"), ("140106", "station"), ("140802", "highway"),
               ("140728", "highway"), ("140502", "station"), ("140322", "highway"))
LEVELS = ("low", "medium", "high", "cases")
TRAINS = ("Z22", "K1234", "G88")
ACTIONS = ("release", "extend", "resolve_missed_test")


@dataclass(frozen=True)
class Plan:
    seed: int
    records: int
    persons: int
    raises: int
    results: float
    notices: float
    commands: float
    duplicates: float


@st.composite
def plans(draw: st.DrawFn, records: int = 2000) -> Plan:
    return Plan(
        seed=draw(st.integers(0, 2**31 - 1)),
        records=records,
        persons=draw(st.integers(records // 12, records // 4)),
        raises=draw(st.integers(1, 12)),
        results=draw(st.floats(0.05, 0.3)),
        notices=draw(st.floats(0.0, 0.08)),
        commands=draw(st.floats(0.0, 0.05)),
        duplicates=draw(st.floats(0.0, 0.05)),
    )


def _stamp(ms: int) -> str:
    return format_ts(ms - ms % 1000)


def expand(plan: Plan) -> list[dict[str, Any]]:
    """The recording a plan stands for, in event-time order (as `produce` sends it)."""
    draw = random.Random(plan.seed)
    persons = [f"prop-{plan.seed % 997:03d}-{n:05d}" for n in range(plan.persons)]
    out: list[dict[str, Any]] = []

    def at(day: float) -> int:
        return START + int(day * DAY_MS)

    # the register: designations before the run, raises and lowerings during it
    for n, area in enumerate(AWAY[:4]):
        when = at(-3)
        out.append(_area(f"ra-init-{n}", area, draw.choice(LEVELS[1:]), when, when))
    for n in range(plan.raises):
        published = at(draw.uniform(0.5, DAYS - 1))
        effective = published - draw.choice((0, 0, HOUR_MS, DAY_MS, 3 * DAY_MS))  # retroactive
        out.append(_area(f"ra-run-{n}", draw.choice(AWAY), draw.choice(("high", "medium", "cases",
                                                                         "low", "lifted")),
                         effective, published))
    scans_wanted = int(plan.records * (1 - plan.results - plan.notices - plan.commands))
    seen: list[tuple[str, int]] = []
    for n in range(max(scans_wanted, 1)):
        person = draw.choice(persons)
        when = at(draw.uniform(0, DAYS))
        area, kind = draw.choice(CHECKPOINTS)
        day = local_day(when)
        travel = [{"area": draw.choice(AWAY), "date": format_date(day - draw.randint(0, 16))}
                  for _ in range(draw.randint(0, 3))]
        value: dict[str, Any] = {
            "id": f"sc-{plan.seed}-{n}", "person": person, "event_time": _stamp(when),
            "checkpoint": {"id": f"CP-{area}-{kind}", "kind": kind, "area": area},
            "travel": travel}
        if kind == "station" and draw.random() < 0.3:
            value["trip"] = {"mode": "train", "number": draw.choice(TRAINS),
                             "date": format_date(day), "alighting": area}
        if kind == "highway" and draw.random() < 0.3:
            value["three_codes"] = {"health_code": draw.choice(("green", "yellow", "red")),
                                    "itinerary_star": draw.random() < 0.2,
                                    "vaccination_doses": draw.randint(0, 3)}
        if draw.random() < 0.01:  # a faulty scanner: an area code that does not exist
            value["checkpoint"] = {**value["checkpoint"], "area": "149999"}
        topic = "checkpoint.scans.station" if kind == "station" else "checkpoint.scans.highway"
        out.append({"topic": topic, "key": person, "value": value})
        seen.append((person, when))
    for n in range(int(plan.records * plan.results)):
        person, scanned = draw.choice(seen)
        collected = scanned + draw.randint(0, 4 * DAY_MS)
        reported = collected + draw.choice((2 * HOUR_MS, 20 * HOUR_MS, 3 * DAY_MS))  # some late
        outcome = "positive" if draw.random() < 0.03 else "negative"
        if draw.random() < 0.15:
            members = sorted({draw.choice(seen)[0] for _ in range(draw.randint(3, 20))})
            out.append({"topic": "checkpoint.pcr-results", "key": f"TUBE-{n}", "value": {
                "id": f"rs-tube-{plan.seed}-{n}", "kind": "pooled", "tube": f"TUBE-{n}",
                "event_time": _stamp(reported), "collected_at": _stamp(collected),
                "result": outcome, "lab_area": "140105",
                "members": [{"person": p, "sample": f"S-{n}-{i}"} for i, p in enumerate(members)]}})
        else:
            out.append({"topic": "checkpoint.pcr-results", "key": f"S-{n}", "value": {
                "id": f"rs-{plan.seed}-{n}", "kind": "single", "person": person,
                "sample": f"S-{n}", "event_time": _stamp(reported),
                "collected_at": _stamp(collected), "result": outcome}})
    for n in range(int(plan.records * plan.notices)):
        when = at(draw.uniform(0.2, DAYS))
        if draw.random() < 0.2:
            number = draw.choice(TRAINS)
            date = format_date(local_day(when) - draw.randint(0, 2))
            out.append({"topic": "checkpoint.contact-notices", "key": f"train:{number}:{date}",
                        "value": {"id": f"nt-trip-{plan.seed}-{n}", "kind": "exposed_trip",
                                  "event_time": _stamp(when),
                                  "trip": {"mode": "train", "number": number, "date": date},
                                  **({"alighting": "1401"} if draw.random() < 0.5 else {})}})
            continue
        person = draw.choice(persons)
        out.append({"topic": "checkpoint.contact-notices", "key": person, "value": {
            "id": f"nt-{plan.seed}-{n}", "person": person, "event_time": _stamp(when),
            "kind": draw.choice(("close_contact", "secondary_contact", "companion",
                                 "big_data_push")), "area": draw.choice(CHECKPOINTS)[0]}})
    for n in range(int(plan.records * plan.commands)):
        person, scanned = draw.choice(seen)
        when = scanned + draw.randint(HOUR_MS, 5 * DAY_MS)
        action = draw.choice(ACTIONS)
        value = {"id": f"cmd-{plan.seed}-{n}", "person": person, "event_time": _stamp(when),
                 "operator": "operator-0042", "reason": "verified", "action": action}
        if action == "extend":
            value["days"] = draw.randint(1, 3)
        out.append({"topic": "checkpoint.operator-commands", "key": person, "value": value})
    out.sort(key=lambda r: parse_ts(r["value"]["event_time"]))
    for _ in range(int(len(out) * plan.duplicates)):  # a producer retrying: sent twice
        twice = draw.randrange(len(out))
        out.insert(twice + 1, out[twice])
    return out


def _area(update_id: str, area: str, level: str, effective: int, published: int) -> dict[str, Any]:
    return {"topic": "checkpoint.risk-areas", "key": area, "value": {
        "id": update_id, "area": area, "level": level, "effective_at": _stamp(effective),
        "event_time": _stamp(published)}}
