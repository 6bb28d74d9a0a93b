"""Per-person state: what the engine remembers between inputs.

Plain dataclasses of JSON types, so that orjson serialises them directly into a Faust
table changelog and `from_json` rebuilds them after recovery. Everything time based is
integer epoch milliseconds; days are CST ordinals. What time alone will do to a person
(`PersonState.steps`) is computed here once, for the engine's `advance` and for the
timers' due times alike.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from .policy import COLOUR_RANK, MARK_RANK
from .timeutil import HOUR_MS, day_start, local_day, parse_ts

SEEN_LIMIT = 512
HISTORY_LIMIT = 50
RESULTS_LIMIT = 50

#: the order in which transitions due at the same instant apply (see `PersonState.steps`)
MISSED, DUE, WINDOW = 0, 1, 2
_RELEASE_RANK = {"operator": 2, "tests": 1, "auto": 0}


@dataclass(slots=True)
class Control:
    """One active control measure, from the rule that started it to its release."""

    id: str
    policy: str
    policy_version: int
    rule: str
    trigger: str
    colour: str
    mark: str | None
    measure: dict[str, Any]
    reason: dict[str, str]
    started: int
    due: int | None
    release: str  # auto | tests | operator
    caused_by: list[str]
    pcr_days: list[int] = field(default_factory=list)
    satisfied: list[int] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    checked_day: int = 0
    landing: int | None = None
    negatives: list[str] = field(default_factory=list)
    hold: str | None = None
    window_alerted: bool = False
    #: the county its start was counted in by the daily reports: its end counts there too
    area: str | None = None

    @property
    def start_day(self) -> int:
        return local_day(self.started)

    def day_end(self, day: int) -> int:
        """The instant test day `day` of this control is over (a missed test shows then)."""
        return day_start(self.start_day + day + 1)

    def tests_window(self) -> int:
        """How long after landing the negative tests of a `tests` release may be taken."""
        return int(self.measure.get("tests", {}).get("within_hours", 72)) * HOUR_MS

    def to_record(self) -> dict[str, Any]:
        """The control as a stored state holds it: the fields still at their default left
        out (`PersonState.to_record`)."""
        record = {name: getattr(self, name) for name in _CONTROL_REQUIRED}
        for name, default in _CONTROL_DEFAULTS:
            value = getattr(self, name)
            if value != default:
                record[name] = value
        return record

    def strictness(self) -> tuple[int, int, int]:
        """Order controls for "the strictest active control wins"."""
        return (COLOUR_RANK[self.colour], MARK_RANK[self.mark], _RELEASE_RANK[self.release])

    def clone(self) -> Control:
        """A copy whose lists the engine may change (the measure and reason are shared:
        nothing changes them)."""
        copy = Control(self.id, self.policy, self.policy_version, self.rule, self.trigger,
                       self.colour, self.mark, self.measure, self.reason, self.started,
                       self.due, self.release, self.caused_by, list(self.pcr_days),
                       list(self.satisfied), list(self.missed), self.checked_day, self.landing,
                       list(self.negatives), self.hold, self.window_alerted, self.area)
        return copy


def _instant(at: int | str) -> int:
    """History entries keep their time as text, the rest as epoch milliseconds."""
    return parse_ts(at) if isinstance(at, str) else at


#: (instant, order, action, control, argument): one transition time alone will make
Step = tuple[int, int, int, Control, int]


@dataclass(slots=True)
class PersonState:
    person: str
    colour: str = "green"
    mark: str | None = None
    controls: list[Control] = field(default_factory=list)
    visits: dict[str, int] = field(default_factory=dict)  # area -> last day visited
    trips: dict[str, dict[str, Any]] = field(default_factory=dict)  # trip key -> scan facts
    arrival: dict[str, Any] | None = None  # last arrival scan: id, area, at, checkpoint, sample
    results: list[dict[str, Any]] = field(default_factory=list)
    positive: str | None = None  # id of an unresolved positive result
    seen: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    #: knowledge key ([instant, id]) of the register as far as this person was brought up
    #: to date: raises and exposed trips known after it have not reached them yet
    caught_up: list[Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def to_record(self) -> dict[str, Any]:
        """The state as the person table stores it (its changelog record): `to_json()`
        without the fields still at their default, which `from_json` restores.

        Most of them are, in most states (a green person has no mark, no controls, no
        results; a control's test days are empty until it has some): leaving them out
        makes the average record of a generated load's 19,424 persons 1,347 -> 1,189 bytes,
        written to the changelog and RocksDB for every decided input, read back by every
        recovery."""
        record: dict[str, Any] = {"person": self.person}
        for name, default in _PERSON_DEFAULTS:
            value = getattr(self, name)
            if value != default:
                record[name] = value
        if self.controls:
            record["controls"] = [c.to_record() for c in self.controls]
        return record

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PersonState:
        controls = [Control(**c) for c in data.get("controls", ())]
        return cls(**{**data, "controls": controls})

    def clone(self) -> PersonState:
        """A copy the engine may change without touching this one (entries of `results`,
        `history`, `trips` and `arrival` are replaced, never changed, so they are shared)."""
        return PersonState(self.person, self.colour, self.mark,
                           [c.clone() for c in self.controls], dict(self.visits),
                           dict(self.trips), self.arrival, list(self.results), self.positive,
                           list(self.seen), list(self.history),
                           None if self.caught_up is None else list(self.caught_up))

    def control(self, control_id: str) -> Control | None:
        return next((c for c in self.controls if c.id == control_id), None)

    def strictest(self) -> Control | None:
        return max(self.controls, key=Control.strictness, default=None)

    def recompute(self) -> None:
        """Colour and mark follow the strictest active control; no control means green."""
        self.colour = max((c.colour for c in self.controls), key=COLOUR_RANK.__getitem__,
                          default="green")
        self.mark = max((c.mark for c in self.controls), key=MARK_RANK.__getitem__, default=None)

    def remember(self, input_id: str) -> bool:
        """Record an input id; False when it was seen before (a redelivery)."""
        if input_id in self.seen:
            return False
        self.seen.append(input_id)
        if len(self.seen) > SEEN_LIMIT:
            del self.seen[: len(self.seen) - SEEN_LIMIT]
        return True

    def steps(self) -> list[Step]:
        """Every transition that time alone will make to this person, unordered: a test
        day that ends without its test (MISSED), a control's due time (DUE), the window of
        a tests release closing (WINDOW). `evaluate.advance` applies them earliest first;
        `next_due` is the earliest, which is what the release timers wait for."""
        steps: list[Step] = []
        for order, control in enumerate(self.controls):
            unchecked = [d for d in control.pcr_days
                         if d > control.checked_day and d not in control.satisfied]
            if unchecked:
                day = min(unchecked)
                steps.append((control.day_end(day), MISSED, order, control, day))
            if control.due is not None and control.hold is None:
                steps.append((control.due, DUE, order, control, 0))
            if control.release == "tests" and control.landing is not None \
                    and not control.window_alerted:
                steps.append((control.landing + control.tests_window(), WINDOW, order, control, 0))
        return steps

    def next_due(self) -> int | None:
        """The earliest instant a timer may change this person (None: nothing pending)."""
        return min((step[0] for step in self.steps()), default=None)

    def matters_until(self, lookback_days: int) -> int | None:
        """The instant from which nothing in this state can change a decision or a report
        any more (docs/privacy.md, "Retention"); None while something still can: an active
        control (its release, test days and held release included) or an unresolved
        positive result.

        Otherwise the latest of: each stay and trip leaving the longest lookback window of
        the policies (`lookback_days`: a raise or an exposed trip can no longer reach it),
        and each day the person was seen (arrival, results, code changes) plus one, whose
        daily report is filed in the first minutes of the next day.
        """
        if self.controls or self.positive is not None:
            return None
        ends = [day_start(day + lookback_days + 1) for day in self.visits.values()]
        ends.extend(day_start(trip["day"] + lookback_days + 1) for trip in self.trips.values())
        seen = [entry["at"] for entry in self.history]
        seen.extend(result["collected"] for result in self.results)
        if self.arrival is not None:
            seen.append(self.arrival["at"])
        ends.extend(day_start(local_day(_instant(at)) + 2) for at in seen)
        return max(ends, default=0)


def _defaults(cls: type, skip: tuple[str, ...] = ()) -> tuple[tuple[str, Any], ...]:
    found: list[tuple[str, Any]] = []
    for f in fields(cls):
        if f.name in skip:
            continue
        if f.default is not MISSING:
            found.append((f.name, f.default))
        elif f.default_factory is not MISSING:
            found.append((f.name, f.default_factory()))
    return tuple(found)


#: (field, default) of the fields a stored record leaves out when they hold their default
_CONTROL_DEFAULTS = _defaults(Control)
_CONTROL_REQUIRED = tuple(f.name for f in fields(Control)
                          if f.name not in dict(_CONTROL_DEFAULTS))
_PERSON_DEFAULTS = _defaults(PersonState, skip=("controls",))
