"""Per-person state: what the engine remembers between inputs.

Kept as plain dataclasses of JSON types so that orjson serialises them directly into a
Faust table changelog, and `from_json` rebuilds them after recovery. Everything time
based is integer epoch milliseconds; days are CST ordinals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .policy import COLOUR_RANK, MARK_RANK
from .timeutil import local_day

SEEN_LIMIT = 512
HISTORY_LIMIT = 50
RESULTS_LIMIT = 50


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

    @property
    def start_day(self) -> int:
        return local_day(self.started)

    def strictness(self) -> tuple[int, int, int]:
        """Order controls for "the strictest active control wins"."""
        release_rank = {"operator": 2, "tests": 1, "auto": 0}[self.release]
        return (COLOUR_RANK[self.colour], MARK_RANK[self.mark], release_rank)


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PersonState:
        controls = [Control(**c) for c in data.get("controls", ())]
        return cls(**{**data, "controls": controls})

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

    def next_due(self) -> int | None:
        """The earliest instant a timer may change this person (None: nothing pending)."""
        times = _pending_times(self)
        return min(times) if times else None


def _pending_times(state: PersonState) -> list[int]:
    """`evaluate.pending_times`, bound on first use: evaluate imports this module, and an
    import statement run on every call (a saved state asks once) cost about 1 µs."""
    global _pending_times
    from .evaluate import pending_times

    _pending_times = pending_times
    return pending_times(state)
