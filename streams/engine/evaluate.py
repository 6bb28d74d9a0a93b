"""The policy engine: (person state, input, register, policies, now) -> (state, events).

Pure: no clock (now is a parameter), no I/O, no Faust. The live agents, the timers and
the offline replay all call `process`, which is what makes every live decision
reproducible from a recording.

Invariants the rest of the system relies on:
- every control start emits exactly one event (`assign` when the colour rises, `mark`
  for a blue mark, `monitor` otherwise) and every control end exactly one
  (`release`, `reclassify`);
- event ids are derived from their causes, so a redelivered input yields the same ids
  (and a seen input id yields nothing at all);
- a weaker rule never downgrades an active stricter control, and lowering an area's
  level never shortens a running control.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .matching import Facts
from .policy import COLOUR_RANK, Policy, PolicyBook, Rule
from .register import (
    ANY_LEVEL,
    RISK_LEVELS,
    Known,
    Register,
    fanout_at,
    known_by,
    reaches,
    trip_key,
    update_known,
)
from .state import DUE, HISTORY_LIMIT, MISSED, RESULTS_LIMIT, Control, PersonState, Step
from .timeutil import DAY_MS, day_start, format_ts, local_day, parse_date, parse_ts

# Input types a person-keyed stream can carry (the `type` of a PersonInput).
SCAN, RESULT, NOTICE, COMMAND, REEVALUATE, EXPOSURE, TICK = (
    "scan", "result", "notice", "command", "reevaluate", "exposure", "tick",
)
CODE_CHANGE, ALERT = "code_change", "alert"


#: the province of the bundled policies (Shanxi)
DEFAULT_HOME = "14"


@dataclass(slots=True)
class Context:
    register: Register
    policies: PolicyBook
    now: int  # epoch ms: wall clock live, event-time clock in replay
    #: the deployment's home jurisdiction: where a positive result is decided when
    #: neither the sample's place nor the person's arrival is known
    home: str | None = DEFAULT_HOME
    #: how long (ms) a state is kept after nothing in it can matter any more
    #: (`PersonState.matters_until`); None keeps every state for ever
    retention_grace: int | None = None
    #: after an input, also bring the person up to date with what the register learned
    #: after the input's time and up to `now` (the wall clock: see `process`)
    catch_up_to_now: bool = False

    def forget_at(self, state: PersonState) -> int | None:
        """When `state` is to be deleted (None: not now foreseeable, or never)."""
        if self.retention_grace is None:
            return None
        until = state.matters_until(self.policies.max_lookback_days)
        return None if until is None else until + self.retention_grace


@dataclass(slots=True)
class Outcome:
    state: PersonState
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: str = "applied"  # applied | duplicate | no_policy | unmatched | rejected
    #: the state is to be deleted: nothing in it can matter any more (a timer's tick)
    forget: bool = False


def digest(*parts: object) -> str:
    """24 hex characters of SHA-256 over `parts`, every eighth forced to a letter (a-f).

    Ids travel through the same input gate and log redaction as everything else, which
    treat any run of 18 digits as a resident identity number; a plain hex digest holds
    such a run about once in a thousand ids. With a letter every eight characters no id
    ever does, and the id still matches `[0-9a-f]+`.
    """
    chars = list(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:24])
    for index in (7, 15, 23):
        chars[index] = "abcdef"[int(chars[index], 16) % 6]
    return "".join(chars)


# --------------------------------------------------------------------------- facts
def _window(state: PersonState, at: int, lookback_days: int) -> list[str]:
    """The areas stayed in "within N days" of `at`: the N calendar dates that end with
    `at`'s date (docs/policies.md, "What 'within N days' covers"). Stays are dates, as
    travel histories report them, so the window counts dates, not hours."""
    first_day = local_day(at) - lookback_days + 1
    return [area for area, day in state.visits.items() if day >= first_day]


class _Facts:
    """What the register says about one travel history at one instant, looked up once.

    A scan is tried against a policy's rules in order, and every rule asks the register
    about the same areas at the same instant, as known at the same moment: each area's
    designations (the area itself and its prefixes) and the designated areas of its
    county and city are looked up the first time a rule needs them and reused by the next.
    """

    __slots__ = ("_own", "_within", "areas", "at", "known", "register")

    def __init__(self, areas: list[str], register: Register, at: int, known: Known) -> None:
        self.areas = areas
        self.register = register
        self.at = at
        self.known = known
        self._own: list[list[tuple[str, str]]] | None = None
        self._within: dict[str, list[tuple[str, str, str]]] = {}

    def own(self) -> list[list[tuple[str, str]]]:
        """Per area, the (level, update id) in force for it and for each of its prefixes,
        province first (GB/T 2260 cuts: 2, 4, 6, 9, 12 digits)."""
        if self._own is None:
            designation_at = self.register.designation_at
            self._own = []
            for area in self.areas:
                found = []
                for cut in (2, 4, 6, 9, 12):
                    if cut > len(area):
                        break
                    designation = designation_at(area[:cut], self.at, self.known)
                    if designation is not None:
                        found.append(designation)
                self._own.append(found)
        return self._own

    def within(self, prefix: str) -> list[tuple[str, str, str]]:
        """(area, level, update id) of every designated area under `prefix` now."""
        hits = self._within.get(prefix)
        if hits is None:
            hits = self._within[prefix] = list(
                self.register.designated_within(prefix, self.at, ANY_LEVEL, self.known))
        return hits


def match_rule(
    rule: Rule,
    visited: Iterable[str],
    policy: Policy,
    register: Register,
    at: int,
    inbound: Mapping[str, Any] | None = None,
    facts: _Facts | None = None,
    known: Known | None = None,
) -> list[str] | None:
    """The register updates that make `rule` hold (possibly none), or None if it does not;
    the register as known by `known` (default: by `at`)."""
    causes: list[str] = []
    if facts is None:
        facts = _Facts(list(visited), register, at, known_by(at) if known is None else known)
    areas = facts.areas
    for condition, argument in rule.conditions():
        found: str | bool | None = None
        if condition == "visited_area_level":
            found = next((update for designations in facts.own()
                          for level, update in designations if level in argument), None)
        elif condition in ("visited_county_level", "visited_city_level"):
            cut = 6 if condition == "visited_county_level" else 4
            found = next((update for area in areas if len(area) >= cut
                          for _, level, update in facts.within(area[:cut]) if level in argument),
                         None)
        elif condition == "visited_province":
            found = any(area[:2] in argument for area in areas)
        elif condition == "outside_province":
            found = any(area[:2] != policy.jurisdiction[:2] for area in areas)
        elif condition == "inbound_quarantine_days":
            found = bool(inbound) and inbound.get("quarantine_days") == argument  # type: ignore[union-attr]
        else:  # the policy schema forbids this; fail loudly rather than match silently
            raise ValueError(f"unknown condition {condition!r} in rule {rule.id}")
        if not found:
            return None
        if isinstance(found, str):
            causes.append(found)
    return causes


def first_match(
    policy: Policy, trigger: str, visited: list[str], register: Register, at: int,
    inbound: Mapping[str, Any] | None = None, known: Known | None = None,
) -> tuple[Rule, list[str]] | None:
    """The first rule of `trigger` that holds, and the register updates that make it hold;
    the register as known by `known` (default: by `at`). Through the policy's compiled
    rules (`streams.engine.matching`); the same answer as `first_match_walk`."""
    matcher = policy.matcher(trigger)
    if matcher is None:
        return None
    return matcher.first_match(
        Facts(visited, register, at, known_by(at) if known is None else known), inbound)


def first_match_walk(
    policy: Policy, trigger: str, visited: list[str], register: Register, at: int,
    inbound: Mapping[str, Any] | None = None, known: Known | None = None,
) -> tuple[Rule, list[str]] | None:
    """`first_match` the way the policy file reads: every rule in order, each condition
    asking the register. The reference the compiled rules are tested against."""
    facts = _Facts(list(visited), register, at, known_by(at) if known is None else known)
    for rule in policy.rules_on(trigger):
        causes = match_rule(rule, visited, policy, register, at, inbound, facts)
        if causes is not None:
            return rule, causes
    return None


# -------------------------------------------------------------------------- output
def _code_change(
    state: PersonState, kind: str, control: Control, before: str, event_time: int, ctx: Context,
    *, caused_by: list[str], event_key: str, command: Mapping[str, Any] | None = None,
    reason: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    event = {
        "id": "cc-" + digest(state.person, kind, control.id, event_key),
        "kind": kind,
        "person": state.person,
        "from": before,
        "to": state.colour,
        "mark": state.mark,
        "policy": {"id": control.policy, "version": control.policy_version},
        "rule": control.rule,
        "reason": dict(reason or control.reason),
        "measure": control.measure,
        "control": control.id,
        "release_at": format_ts(control.due) if control.due is not None and kind in (
            "assign", "monitor", "mark", "extend") else None,
        "caused_by": list(dict.fromkeys(caused_by)),
        "command": {"id": command["id"], "operator": command["operator"]} if command else None,
        "event_time": format_ts(event_time),
        "emitted_at": format_ts(ctx.now),
    }
    state.history.append({
        "id": event["id"], "kind": kind, "from": before, "to": state.colour,
        "rule": control.rule, "at": event["event_time"], "caused_by": event["caused_by"],
    })
    if len(state.history) > HISTORY_LIMIT:
        del state.history[0]
    return CODE_CHANGE, event


def _alert(
    kind: str, severity: str, detail: Mapping[str, str], event_time: int, ctx: Context, *,
    person: str | None = None, subject: str | None = None, caused_by: Iterable[str] = (),
    control: Control | None = None, key: object = "",
) -> tuple[str, dict[str, Any]]:
    alert: dict[str, Any] = {
        "id": "al-" + digest(kind, person, subject, key),
        "kind": kind,
        "severity": severity,
        "detail": dict(detail),
        "caused_by": list(dict.fromkeys(caused_by)),
        "event_time": format_ts(event_time),
        "emitted_at": format_ts(ctx.now),
    }
    if person is not None:
        alert["person"] = person
    if subject is not None:
        alert["subject"] = subject
    if control is not None:
        alert["policy"] = {"id": control.policy, "version": control.policy_version}
        alert["rule"] = control.rule
    return ALERT, alert


RELEASE_REASON = {
    "auto": {"zh": "管控期满无异常，自动解码", "en": "Control period ended with no anomaly; released"},
    "tests": {"zh": "规定核酸检测结果均为阴性，解码", "en": "Required tests negative; released"},
}


# ------------------------------------------------------------------------ controls
def _start_control(
    state: PersonState, policy: Policy, rule: Rule, started: int, caused_by: list[str],
    ctx: Context, *, landing: int | None = None, place: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Start `rule`'s control unless the same rule already runs for this person. `place`:
    the area the cause names (a lab, a notice), where the control counts in the reports
    when the person never arrived at a checkpoint."""
    if not rule.measure.is_control:
        return []
    if any(c.policy == policy.id and c.rule == rule.id for c in state.controls):
        return []
    measure = rule.measure
    control = Control(
        id="ctl-" + digest(state.person, policy.id, policy.version, rule.id, caused_by[0]),
        policy=policy.id,
        policy_version=policy.version,
        rule=rule.id,
        trigger=rule.trigger,
        colour=rule.colour,
        mark=rule.mark,
        measure=measure.to_json(),
        reason=dict(rule.reason),
        started=started,
        due=started + measure.total_days * DAY_MS if measure.release == "auto" else None,
        release=measure.release,
        caused_by=list(dict.fromkeys(caused_by)),
        pcr_days=list(measure.pcr_days),
        landing=(landing if landing is not None else started) if measure.tests else None,
        area=(state.arrival or {}).get("area") or place,
    )
    before = state.colour
    state.controls.append(control)
    state.recompute()
    if COLOUR_RANK[state.colour] > COLOUR_RANK[before]:
        kind = "assign"
    elif rule.mark == "blue":
        kind = "mark"  # the blue mark: monitoring that leaves the code as it is (蓝标)
    else:
        kind = "monitor"
    return [_code_change(state, kind, control, before, started, ctx,
                         caused_by=control.caused_by, event_key="start")]


def _end_control(
    state: PersonState, control: Control, at: int, ctx: Context, *, kind: str = "release",
    command: Mapping[str, Any] | None = None, reason: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    before = state.colour
    state.controls.remove(control)
    state.recompute()
    causes = [command["id"]] if command else list(control.caused_by)
    return _code_change(
        state, kind, control, before, at, ctx, caused_by=causes,
        event_key=command["id"] if command else "end", command=command,
        reason=reason or RELEASE_REASON.get(control.release, RELEASE_REASON["auto"]),
    )


def _blockers(state: PersonState, control: Control, at: int) -> str | None:
    """Why a due control may not be released yet (None: it may)."""
    if state.positive is not None:
        return "positive"
    if control.missed:
        return "missed_test"
    for day in control.pcr_days:
        if day not in control.satisfied and day_start(control.start_day + day) <= at:
            return "awaiting_test"  # today's test not in yet; missed at the end of the day
    return None


def advance(state: PersonState, ctx: Context, until: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Apply every time-based transition due up to `until` (default `ctx.now`), oldest first
    (`PersonState.steps`: the timers wait for the same instants)."""
    until = ctx.now if until is None else until
    events: list[tuple[str, dict[str, Any]]] = []
    for _ in range(10_000):  # bounded: each step consumes one pending instant
        step = min(state.steps(), key=_step_order, default=None)
        if step is None or step[0] > until:
            return events
        at, action, _, control, day = step
        if action == MISSED:
            control.checked_day = max(control.checked_day, day)
            control.missed.append(day)
            if state.positive is not None:
                continue  # a positive person's schedule is superseded by treatment
            events.append(_alert(
                "missed_test", "warn",
                {"zh": f"第{day}天核酸检测未按时完成，暂缓解码",
                 "en": f"Required PCR test of day {day} was not taken; release is held"},
                at, ctx, person=state.person, caused_by=control.caused_by, control=control,
                key=f"{control.id}:{day}",
            ))
            if control.due is not None and control.due <= at and control.hold == "awaiting_test":
                control.hold = "missed_test"
        elif action == DUE:
            events.extend(_try_release(state, control, at, ctx))
        else:  # the tests window closed without enough negative results
            control.window_alerted = True
            events.append(_alert(
                "hold_release", "warn",
                {"zh": "规定时间内未完成所需核酸检测，需人工核实后解码",
                 "en": "Required negative tests not collected inside the window; operator review"},
                at, ctx, person=state.person, caused_by=control.caused_by, control=control,
                key=f"{control.id}:window",
            ))
    raise RuntimeError("advance did not converge")  # pragma: no cover - a bug, not input


def _step_order(step: Step) -> tuple[int, int, int]:
    return step[0], step[1], step[2]


def _try_release(
    state: PersonState, control: Control, at: int, ctx: Context,
) -> list[tuple[str, dict[str, Any]]]:
    blocker = _blockers(state, control, at)
    if blocker is None:
        return [_end_control(state, control, at, ctx)]
    first_hold = control.hold is None or control.hold == "awaiting_test"
    control.hold = blocker
    if blocker != "awaiting_test" and first_hold:
        return [_alert(
            "hold_release", "warn",
            {"zh": "管控期满但存在异常（阳性或漏检），暂缓解码",
             "en": f"Control due but held ({blocker.replace('_', ' ')})"},
            at, ctx, person=state.person, caused_by=control.caused_by, control=control,
            key=f"{control.id}:{blocker}",
        )]
    return []


def _retry_held(state: PersonState, at: int, ctx: Context) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    for control in list(state.controls):
        if control.hold is not None and control.due is not None and control.due <= at:
            events.extend(_try_release(state, control, at, ctx))
    return events


# ---------------------------------------------------------------------- jurisdiction
def _policy_for(state: PersonState, ctx: Context, at: int, fallback_area: str | None) -> Policy | None:
    area = (state.arrival or {}).get("area") or fallback_area
    return ctx.policies.in_force(area, at) if area else None


#: What one person's state may remember of travel. A state is one changelog record, and a
#: record over Kafka's 1 MB limit crashes the worker's producer (and the redelivered input
#: then crashes the next owner): a scan may list 2,000 stays, so without a bound a few
#: dozen hostile scans of one person stop the pipeline. Real itineraries hold a few dozen
#: stays within the lookback window; past the bound the oldest stays are forgotten first.
VISITS_LIMIT = 1024
TRIPS_LIMIT = 128


def _record_travel(state: PersonState, scan: Mapping[str, Any], at: int, max_lookback: int) -> None:
    day = local_day(at)
    for entry in scan.get("travel", ()):
        # a stay cannot lie after the scan: a future date counts as the scan's day, so it
        # stays in the window (a risk is not hidden) and expires like any other stay
        visited = min(parse_date(entry["date"]), day)
        if visited > state.visits.get(entry["area"], -1):
            state.visits[entry["area"]] = visited
    checkpoint_area = scan["checkpoint"]["area"]
    state.visits[checkpoint_area] = max(day, state.visits.get(checkpoint_area, -1))
    oldest = day - max_lookback - 1
    for area in [a for a, d in state.visits.items() if d < oldest]:
        del state.visits[area]
    if len(state.visits) > VISITS_LIMIT:
        newest = sorted(state.visits.items(), key=lambda item: item[1], reverse=True)
        keep = {area for area, _ in newest[:VISITS_LIMIT]}
        state.visits = {a: d for a, d in state.visits.items() if a in keep}
    for key in [k for k, t in state.trips.items() if t["day"] < oldest]:
        del state.trips[key]
    for key in list(state.trips)[: max(len(state.trips) - TRIPS_LIMIT + 1, 0)]:
        del state.trips[key]


# --------------------------------------------------------------------------- inputs
def _on_scan(state: PersonState, scan: Mapping[str, Any], ctx: Context, outcome: Outcome) -> None:
    at = parse_ts(scan["event_time"])
    before_colour = state.colour
    _record_travel(state, scan, at, ctx.policies.max_lookback_days)
    checkpoint = scan["checkpoint"]
    state.arrival = {"scan": scan["id"], "area": checkpoint["area"], "at": at,
                     "checkpoint": checkpoint["id"], "kind": checkpoint["kind"],
                     "sample": scan.get("sample")}
    trip = scan.get("trip")
    if trip:
        state.trips[trip_key(trip)] = {"scan": scan["id"], "day": parse_date(trip["date"]),
                                       "alighting": trip.get("alighting")}
    events = outcome.events
    policy = ctx.policies.in_force(checkpoint["area"], at)
    if policy is None:
        outcome.status = "no_policy"
    else:
        visited = _window(state, at, policy.lookback_days)
        found = first_match(policy, "arrival", visited, ctx.register, at, scan.get("inbound"))
        if found is None:
            outcome.status = "unmatched"
        else:
            rule, causes = found
            events.extend(_start_control(state, policy, rule, at, [scan["id"], *causes], ctx))
        if trip:
            notice = ctx.register.exposure(trip_key(trip), known_by(at))
            if notice is not None and _alights_where(notice, trip, checkpoint["area"]):
                events.extend(_exposed(state, policy, notice, scan["id"], at, ctx))
    codes = scan.get("three_codes")
    if checkpoint["kind"] == "highway" and codes:
        events.extend(_three_code_check(state, scan, codes, before_colour, at, policy, ctx))


def _alights_where(notice: Mapping[str, Any], trip: Mapping[str, Any], area: str) -> bool:
    wanted = notice.get("alighting")
    if not wanted:
        return True
    where = trip.get("alighting") or area
    return bool(where) and where.startswith(wanted)


def _exposed(
    state: PersonState, policy: Policy, notice: Mapping[str, Any], scan_id: str, at: int,
    ctx: Context,
) -> list[tuple[str, dict[str, Any]]]:
    rule = next(iter(policy.rules_on("exposed_trip")), None)
    if rule is None:
        return []
    started = max(at, parse_ts(notice["event_time"]))
    return _start_control(state, policy, rule, started, [notice["id"], scan_id], ctx)


def _three_code_check(
    state: PersonState, scan: Mapping[str, Any], codes: Mapping[str, Any], system_colour: str,
    at: int, policy: Policy | None, ctx: Context,
) -> list[tuple[str, dict[str, Any]]]:
    alerts = []
    shown = codes.get("health_code")
    if shown in COLOUR_RANK and COLOUR_RANK[shown] < COLOUR_RANK[system_colour]:
        alerts.append(_alert(
            "three_code_mismatch", "page",
            {"zh": f"三码联查不一致：出示{_ZH_COLOUR[shown]}，系统为{_ZH_COLOUR[system_colour]}",
             "en": f"Three-code check: shows {shown}, system says {system_colour}"},
            at, ctx, person=state.person, caused_by=[scan["id"]], key=f"{scan['id']}:code",
        ))
    if codes.get("itinerary_star"):
        lookback = policy.lookback_days if policy else 14
        visited = _window(state, at, lookback)
        explained = any(
            next(ctx.register.designated_within(area[:4], at, RISK_LEVELS, known_by(at)), None)
            is not None
            for area in visited if len(area) >= 4
        )
        if not explained:
            alerts.append(_alert(
                "three_code_mismatch", "warn",
                {"zh": "行程卡带星号，但申报行程中无涉疫地市",
                 "en": "Itinerary code shows a star that the travel history does not explain"},
                at, ctx, person=state.person, caused_by=[scan["id"]], key=f"{scan['id']}:star",
            ))
    return alerts


_ZH_COLOUR = {"green": "绿码", "yellow": "黄码", "red": "红码"}


def _on_result(state: PersonState, result: Mapping[str, Any], ctx: Context, outcome: Outcome) -> None:
    at = parse_ts(result["event_time"])
    collected = parse_ts(result["collected_at"])
    state.results.append({"id": result["id"], "sample": result.get("sample"),
                          "collected": collected, "result": result["result"],
                          "tube": result.get("tube")})
    if len(state.results) > RESULTS_LIMIT:
        del state.results[0]
    events = outcome.events
    if result["result"] == "positive":
        state.positive = result["id"]
        # under every notice a positive result is red at once: decided where the sample
        # was taken, else where the person arrived, else in the home jurisdiction
        place = result.get("lab_area") or (state.arrival or {}).get("area") or ctx.home
        policy = ctx.policies.in_force(place, at) if place else None
        rule = next(iter(policy.rules_on("positive_result")), None) if policy else None
        if policy is None or rule is None:
            outcome.status = "no_policy"
        else:
            events.extend(_start_control(state, policy, rule, at, [result["id"]], ctx,
                                         place=result.get("lab_area")))
        if result.get("kind") != "pooled":  # a pooled tube raises one alert for all members
            events.append(_alert(
                "positive_result", "page",
                {"zh": "核酸检测阳性", "en": "Positive PCR result"},
                at, ctx, person=state.person, caused_by=[result["id"]], key=result["id"],
            ))
        return
    collected_day = local_day(collected)
    for control in list(state.controls):
        day = collected_day - control.start_day
        if day in control.pcr_days and day not in control.satisfied:
            control.satisfied.append(day)
        made_up = [d for d in control.missed if control.day_end(d) <= collected]
        if made_up:  # a later test makes up for a missed day (and lifts that hold)
            control.missed = [d for d in control.missed if d not in made_up]
            control.satisfied.extend(made_up)
        if (control.release == "tests" and control.landing is not None
                and control.landing < collected <= control.landing + control.tests_window()
                and result["id"] not in control.negatives):
            control.negatives.append(result["id"])
            needed = int(control.measure.get("tests", {}).get("count", 2))
            if len(control.negatives) >= needed:
                events.append(_end_control(state, control, at, ctx))
    events.extend(_retry_held(state, at, ctx))


def _on_notice(state: PersonState, notice: Mapping[str, Any], ctx: Context, outcome: Outcome) -> None:
    at = parse_ts(notice["event_time"])
    policy = _policy_for(state, ctx, at, notice.get("area"))
    rule = next(iter(policy.rules_on(notice["kind"])), None) if policy else None
    if policy is None or rule is None:
        outcome.status = "no_policy"
        return
    outcome.events.extend(_start_control(state, policy, rule, at, [notice["id"]], ctx,
                                         place=notice.get("area")))


def _on_exposure(state: PersonState, notice: Mapping[str, Any], ctx: Context, outcome: Outcome) -> None:
    key = trip_key(notice["trip"])
    trip = state.trips.get(key)
    at = parse_ts(notice["event_time"])
    if trip is None or state.arrival is None:
        outcome.status = "unmatched"
        return
    if not _alights_where(notice, {"alighting": trip.get("alighting")}, state.arrival["area"]):
        outcome.status = "unmatched"
        return
    policy = _policy_for(state, ctx, at, None)
    if policy is None:
        outcome.status = "no_policy"
        return
    outcome.events.extend(_exposed(state, policy, notice, trip["scan"], at, ctx))


def _on_reevaluate(state: PersonState, update: Mapping[str, Any], ctx: Context, outcome: Outcome) -> None:
    """Retroactive re-evaluation (C2): an area was raised after this person passed it. The
    register as known up to the raise itself, at the instant it acts (`fanout_at`)."""
    at = fanout_at(update)
    policy = _policy_for(state, ctx, at, None)
    if policy is None or state.arrival is None:
        outcome.status = "no_policy"
        return
    visited = _window(state, at, policy.lookback_days)
    found = first_match(policy, "arrival", visited, ctx.register, at, known=update_known(update))
    if found is None or update["id"] not in found[1]:
        outcome.status = "unmatched"  # the raise does not change this person's rule
        return
    rule, causes = found
    outcome.events.extend(
        _start_control(state, policy, rule, at, [update["id"], state.arrival["scan"], *causes], ctx)
    )


def _on_command(state: PersonState, command: Mapping[str, Any], ctx: Context, outcome: Outcome) -> None:
    at = parse_ts(command["event_time"])
    action = command["action"]
    targets = ([state.control(command["control"])] if command.get("control")
               else list(state.controls))
    targets = [c for c in targets if c is not None]

    def reject(why_zh: str, why_en: str) -> None:
        outcome.status = "rejected"
        outcome.events.append(_alert(
            "command_rejected", "warn", {"zh": why_zh, "en": why_en}, at, ctx,
            person=state.person, caused_by=[command["id"]], key=command["id"],
        ))

    if command.get("control") and not targets:
        reject("指令指向的管控不存在", f"no active control {command['control']}")
        return
    if action in ("release", "reclassify") and state.positive and not command.get("override"):
        reject("存在未解除的阳性结果，需明确override方可解码",
               "unresolved positive result: release needs an explicit override")
        return
    reason = {"zh": f"人工核实：{command['reason']}", "en": f"Operator: {command['reason']}"}
    if action == "release":
        if command.get("override"):
            state.positive = None
        for control in targets:
            outcome.events.append(_end_control(state, control, at, ctx, command=command,
                                               reason=reason))
    elif action == "reclassify":
        policy = _policy_for(state, ctx, at, None)
        if policy is None and targets:
            policy = ctx.policies.get(targets[0].policy, targets[0].policy_version)
        new_rule = None
        if command["rule"] != "green":
            new_rule = policy.rule(command["rule"]) if policy else None
            if new_rule is None:
                reject("改判规则不存在", f"unknown rule {command['rule']} in the policy in force")
                return
        if command.get("override"):
            state.positive = None
        for control in targets:
            outcome.events.append(_end_control(state, control, at, ctx, kind="reclassify",
                                               command=command, reason=reason))
        if new_rule is not None and policy is not None:
            outcome.events.extend(_start_control(state, policy, new_rule, at, [command["id"]], ctx))
    elif action == "extend":
        longest = max(targets, key=Control.strictness, default=None)
        if longest is None or longest.due is None:
            reject("无可延长的管控", "no timed control to extend")
            return
        longest.due += int(command["days"]) * DAY_MS
        outcome.events.append(_code_change(
            state, "extend", longest, state.colour, at, ctx, caused_by=[command["id"]],
            event_key=command["id"], command=command, reason=reason,
        ))
    elif action == "resolve_missed_test":
        for control in targets:  # the operator waives every test day that has begun
            waived = {d for d in control.pcr_days if day_start(control.start_day + d) <= at}
            control.satisfied = sorted(set(control.satisfied) | waived)
            control.missed.clear()
        outcome.events.extend(_retry_held(state, at, ctx))


_HANDLERS = {
    SCAN: _on_scan, RESULT: _on_result, NOTICE: _on_notice, COMMAND: _on_command,
}


def input_id(kind: str, value: Mapping[str, Any]) -> str | None:
    """The idempotency key of a person input (ticks have none: they are idempotent)."""
    if kind == TICK:
        return None
    return f"{kind}:{value['id']}"


def process(
    state: PersonState | None, person: str, kind: str, value: Mapping[str, Any], ctx: Context,
) -> Outcome:
    """Apply one person input; the given state is left as it was. The caller keeps
    `outcome.state` and sends the events.

    An input is applied to the world as of its own event time: transitions due before it
    fire first, later ones wait for the clock (a timer tick advances to `now`); raises and
    exposed trips the register learned of before it reach the person first (`catch_up`).
    That is what makes a live run of a recording agree with its offline replay, whatever
    order a worker reads its topics in.

    `reevaluate` (a raised area's update) and `exposure` (an exposed-trip notice) bring the
    person up to date with the register up to and including that entry: the fan-out of a
    raise or an exposed trip to the persons who passed there.
    """
    state = state.clone() if state is not None else PersonState(person=person)
    outcome = Outcome(state=state)
    if kind == TICK:
        outcome.events.extend(advance(state, ctx, ctx.now))
        forget_at = ctx.forget_at(state)
        outcome.forget = not outcome.events and forget_at is not None and forget_at <= ctx.now
        return outcome
    at = parse_ts(value["event_time"])
    if kind in (REEVALUATE, EXPOSURE):
        if not catch_up(state, update_known(value), ctx, outcome.events) and not (
                ctx.catch_up_to_now and _late_entry(state, kind, value, ctx, outcome.events)):
            outcome.status = "duplicate"
        elif not outcome.events:
            outcome.status = "unmatched"
        return outcome
    catch_up(state, known_by(at), ctx, outcome.events)
    until = min(ctx.now, at)
    outcome.events.extend(advance(state, ctx, until))
    key = input_id(kind, value)
    if key is not None and not state.remember(key):
        outcome.status = "duplicate"
        return outcome
    _HANDLERS[kind](state, value, ctx, outcome)
    outcome.events.extend(advance(state, ctx, until))
    if ctx.catch_up_to_now and ctx.now > at:
        # On the wall clock a person's inputs and the register's entries arrive in any
        # order across topics: a raise or an exposed trip later than this input may be
        # known already, its fan-out gone out before this input made the person one of
        # its visitors or passengers. Each reaches them now, at its own time, as it would
        # have had the input come first (the replay's order).
        catch_up(state, known_by(ctx.now), ctx, outcome.events)
    return outcome


#: what a raise (`_on_reevaluate`) or an exposed trip (`_on_exposure`) does to a person
EntryHandler = Callable[[PersonState, Mapping[str, Any], Context, Outcome], None]


def _entry_handler(state: PersonState, kind: str, entry: Mapping[str, Any],
                   ctx: Context) -> EntryHandler | None:
    """How a raise or an exposed trip acts on this person; None when it does not reach
    them (a raise its recent visitors, `reaches`; an exposed trip its passengers)."""
    if kind == REEVALUATE:
        since = local_day(fanout_at(entry)) - ctx.policies.max_lookback_days
        return _on_reevaluate if reaches(state.visits, entry["area"], since) else None
    return _on_exposure if trip_key(entry["trip"]) in state.trips else None


def _late_entry(state: PersonState, kind: str, entry: Mapping[str, Any], ctx: Context,
                events: list[tuple[str, dict[str, Any]]]) -> bool:
    """On the wall clock, a raise or an exposed trip the person was brought past before
    the register learned of it (it arrived later than inputs with later times): applied
    now at its own time, once (by id). False when it was applied before or does not reach
    the person."""
    handler = _entry_handler(state, kind, entry, ctx)
    if handler is None or not state.remember(f"{kind}:{entry['id']}"):
        return False
    until = min(ctx.now, parse_ts(entry["event_time"]))
    events.extend(advance(state, ctx, until))
    handler(state, entry, ctx, Outcome(state, events))
    events.extend(advance(state, ctx, until))
    return True


def catch_up(state: PersonState, upto: Known, ctx: Context,
             events: list[tuple[str, dict[str, Any]]]) -> bool:
    """Re-evaluate the person for every raise and exposed trip the register learned of
    after they were last brought up to date and by `upto`, in the order it learned of
    them, each at its own time; the person is then up to date with `upto`. False when
    they were already (a raise's fan-out reaching someone it reached before).

    A raise reaches the persons whose stays put them in its visitor index (`reaches`), an
    exposed trip its passengers: the offline replay's fan-out, person by person."""
    caught = tuple(state.caught_up) if state.caught_up is not None else None
    if caught is not None and caught >= upto:
        return False
    after: Known = caught if caught is not None else (-(2**62), "")
    if state.visits or state.trips:
        entries = [(update_known(u), REEVALUATE, u) for u in ctx.register.raises_known(after, upto)]
        if state.trips:
            entries.extend((update_known(n), EXPOSURE, n)
                           for n in ctx.register.exposures_known(after, upto))
            entries.sort(key=lambda entry: entry[0])
        for _, kind, entry in entries:
            handler = _entry_handler(state, kind, entry, ctx)
            if handler is None:
                continue
            until = min(ctx.now, parse_ts(entry["event_time"]))
            events.extend(advance(state, ctx, until))
            if state.remember(f"{kind}:{entry['id']}"):
                handler(state, entry, ctx, Outcome(state, events))
                events.extend(advance(state, ctx, until))
    state.caught_up = list(upto)
    return True
