"""The risk-area register: every area's level *history*, and the exposed trips.

Two times matter for an entry. Its *effective* time is when the level holds (a scan is
judged against the levels in force at its event time, a versioned-table join); its
*knowledge* key is when the system learned of it: the update's own `event_time`, ties
broken by its id. A decision at instant `t` sees only what was known by `t`
(`known_by(t)`), and a raise re-evaluates its visitors with exactly what was known up to
itself (`Entry.known`). That is what makes a decision independent of the order in which a
worker happens to read the register topic and its inputs: the offline replay (records
in event-time order) and any number of live workers see the same register at every
decision.

Areas are GB/T 2260 codes; a city with any high, medium or `cases` area is an affected
city, the county holding one a county with risk. Lookups go through per-city and
per-county lists, sorted so that nothing depends on hash order, and cost in proportion
to a travel history, not to the size of the register.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .timeutil import parse_ts

LEVEL_RANK = {None: 0, "lifted": 0, "low": 1, "cases": 2, "medium": 3, "high": 4}
RISK_LEVELS = frozenset({"cases", "medium", "high"})
ANY_LEVEL = frozenset(level for level in LEVEL_RANK if level not in (None, "lifted"))

#: A knowledge key: (instant in epoch ms, id). Keys compare as tuples; `known_by(t)` is
#: after every key of instant `t`.
Known = tuple[int, str]
_LAST_ID = "\U0010ffff"


def known_by(at: int) -> Known:
    """The knowledge key after everything learned at instant `at` or before."""
    return (at, _LAST_ID)


@dataclass(frozen=True, slots=True)
class Entry:
    """One risk-area update as the register keeps it."""

    effective: int
    known: Known
    level: str
    update: Mapping[str, Any]

    @property
    def id(self) -> str:
        return self.known[1]


@dataclass(frozen=True, slots=True)
class LevelChange:
    """What one update does: the level before it (as known when it was published) and
    after, at its effective time. `applied` is False when the register held it already."""

    area: str
    before: str | None
    after: str
    effective_at: int
    known: Known
    applied: bool

    @property
    def is_raise(self) -> bool:
        """Raised over the level in force before it, as known when it was published; the
        same answer whether or not this register had seen the update before."""
        return LEVEL_RANK[self.after] > LEVEL_RANK[self.before]


def trip_key(trip: Mapping[str, Any]) -> str:
    """`mode:number:date`, e.g. `train:Z22:2022-08-17`: how exposed trips are matched."""
    return f"{trip['mode']}:{str(trip['number']).upper()}:{trip['date']}"


def update_known(update: Mapping[str, Any]) -> Known:
    return (parse_ts(update["event_time"]), update["id"])


def fanout_at(update: Mapping[str, Any]) -> int:
    """The instant a raise re-evaluates its visitors: when it is published, or when it
    takes effect if that is later (a raise announced for tomorrow acts tomorrow)."""
    return max(parse_ts(update["event_time"]), parse_ts(update["effective_at"]))


def reaches(visits: Mapping[str, int], area: str, since_day: int) -> bool:
    """Would a raise of `area` reach a person with these visits (area -> last day)?

    The visitor index's rule, per person: a visit on or after `since_day` to the city
    holding `area` (or a province-level entry of its province); for a province-level
    `area`, a visit anywhere inside it."""
    if len(area) >= 4:
        city, province = area[:4], area[:2]
        return any(day >= since_day and (visited[:4] == city if len(visited) >= 4
                                         else visited == province)
                   for visited, day in visits.items())
    return any(day >= since_day and visited.startswith(area) for visited, day in visits.items())


class Register:
    """Area level histories plus exposed trips; changed only by the `apply_*` methods."""

    def __init__(self) -> None:
        # area -> entries sorted by (effective, known); effective times alongside for bisect
        self._entries: dict[str, list[Entry]] = {}
        self._times: dict[str, list[int]] = {}
        # city (4 digits) / county (6 digits) -> designated areas inside, sorted
        self._by_city: dict[str, list[str]] = {}
        self._by_county: dict[str, list[str]] = {}
        # every update by knowledge key: what a catch-up walks
        self._known: list[tuple[Known, str]] = []
        # trip key -> exposed-trip notices by knowledge key
        self._exposures: dict[str, list[tuple[Known, Mapping[str, Any]]]] = {}
        self._exposures_known: list[tuple[Known, str]] = []

    # -- updates -------------------------------------------------------------------
    def apply_update(self, update: Mapping[str, Any]) -> LevelChange:
        """Insert one risk-area update into the history (idempotent by update id)."""
        area: str = update["area"]
        effective = parse_ts(update["effective_at"])
        known = update_known(update)
        entries = self._entries.setdefault(area, [])
        times = self._times.setdefault(area, [])
        applied = all(entry.known != known for entry in entries)
        if applied:
            entry = Entry(effective, known, update["level"], dict(update))
            index = bisect.bisect_right([(e.effective, e.known) for e in entries], (effective, known))
            entries.insert(index, entry)
            times.insert(index, effective)
            bisect.insort(self._known, (known, area))
            if len(area) >= 4:
                _insort_unique(self._by_city.setdefault(area[:4], []), area)
            if len(area) >= 6:
                _insort_unique(self._by_county.setdefault(area[:6], []), area)
        before = self._level_before(area, effective, known)
        return LevelChange(area, before, update["level"], effective, known, applied)

    def apply_exposure(self, notice: Mapping[str, Any]) -> bool:
        """Record an exposed trip; False when that notice was already known."""
        key = trip_key(notice["trip"])
        known = update_known(notice)
        notices = self._exposures.setdefault(key, [])
        if any(k == known for k, _ in notices):
            return False
        bisect.insort(notices, (known, dict(notice)), key=lambda pair: pair[0])
        bisect.insort(self._exposures_known, (known, key))
        return True

    # -- queries -------------------------------------------------------------------
    def _entry_at(self, area: str, at: int, known: Known) -> Entry | None:
        times = self._times.get(area)
        if not times:
            return None
        entries = self._entries[area]
        index = bisect.bisect_right(times, at)
        while index:
            index -= 1
            entry = entries[index]
            if entry.known <= known:
                return entry
        return None

    def _level_before(self, area: str, effective: int, known: Known) -> str | None:
        """The level at `effective` as known just before `known` (the update itself excluded)."""
        times = self._times.get(area) or []
        entries = self._entries.get(area) or []
        index = bisect.bisect_right(times, effective)
        while index:
            index -= 1
            entry = entries[index]
            if entry.known < known:
                return entry.level
        return None

    def level_at(self, area: str, at: int, known: Known | None = None) -> str | None:
        found = self.designation_at(area, at, known)
        return found[0] if found is not None else None

    def designation_at(self, area: str, at: int, known: Known | None = None) -> tuple[str, str] | None:
        """(level, update id) in force for exactly this code at `at`, as known by `known`
        (default: by `at`); None when nothing or `lifted` is."""
        entry = self._entry_at(area, at, known_by(at) if known is None else known)
        if entry is None or entry.level == "lifted":
            return None
        return entry.level, entry.id

    def prefix_designations(self, area: str, at: int, known: Known,
                            skip: set[str]) -> list[tuple[str, str]]:
        """(level, update id) in force at `at` (as known by `known`) for `area` and each of
        its prefixes, province first (GB/T 2260 cuts: 2, 4, 6, 9, 12 digits), leaving out
        the codes in `skip` and adding the ones looked up to it: a travel history repeats
        its province and cities, and a code's designation does not change between its
        areas. `designation_at` for each cut, in one call."""
        found = []
        entry_at = self._entry_at
        for cut in (2, 4, 6, 9, 12):
            if cut > len(area):
                break
            code = area[:cut]
            if code in skip:
                continue
            skip.add(code)
            entry = entry_at(code, at, known)
            if entry is not None and entry.level != "lifted":
                found.append((entry.level, entry.known[1]))
        return found

    def areas_in(self, prefix: str) -> list[str]:
        """Designated areas inside a city (4 digits) or county (6 digits) code, sorted."""
        if len(prefix) == 4:
            return self._by_city.get(prefix, [])
        if len(prefix) == 6:
            return self._by_county.get(prefix, [])
        return sorted(a for a in self._entries if a.startswith(prefix))

    def designated_within(self, prefix: str, at: int, levels: frozenset[str],
                          known: Known | None = None) -> Iterator[tuple[str, str, str]]:
        """(area, level, update id) for areas under `prefix` whose level at `at` is in
        `levels`, in area order."""
        known = known_by(at) if known is None else known
        entry_at = self._entry_at
        for area in self.areas_in(prefix):
            entry = entry_at(area, at, known)
            if entry is not None and entry.level != "lifted" and entry.level in levels:
                yield area, entry.level, entry.known[1]

    def raises_known(self, after: Known, upto: Known) -> Iterator[Mapping[str, Any]]:
        """The updates known in (`after`, `upto`] that raised their area (as known when each
        was published), in knowledge order: what a person who last caught up at `after`
        has still to be re-evaluated for."""
        start = bisect.bisect_right(self._known, (after, _LAST_ID))
        for known, area in self._known[start:]:
            if known > upto:
                return
            entry = next(e for e in self._entries[area] if e.known == known)
            if LEVEL_RANK[entry.level] > LEVEL_RANK[self._level_before(area, entry.effective, known)]:
                yield entry.update

    def exposures_known(self, after: Known, upto: Known) -> Iterator[Mapping[str, Any]]:
        """Exposed-trip notices known in (`after`, `upto`], in knowledge order."""
        start = bisect.bisect_right(self._exposures_known, (after, _LAST_ID))
        for known, key in self._exposures_known[start:]:
            if known > upto:
                return
            yield next(notice for k, notice in self._exposures[key] if k == known)

    def exposure(self, key: str, known: Known) -> Mapping[str, Any] | None:
        """The latest notice for this trip known by `known`."""
        found = None
        for notice_known, notice in self._exposures.get(key, ()):
            if notice_known > known:
                break
            found = notice
        return found

    def snapshot(self, at: int) -> list[dict[str, Any]]:
        """The register as of `at` (everything known): one row per designated area."""
        rows = []
        for area in sorted(self._entries):
            found = self.designation_at(area, at, known_by(2**62))
            if found is not None:
                rows.append({"area": area, "level": found[0], "update": found[1]})
        return rows

    def history(self, area: str) -> list[tuple[int, str, str]]:
        """(effective, update id, level) of every update of `area`, in effective order."""
        return [(e.effective, e.id, e.level) for e in self._entries.get(area, ())]

    def __len__(self) -> int:
        return len(self._entries)


def _insort_unique(items: list[str], item: str) -> None:
    index = bisect.bisect_left(items, item)
    if index == len(items) or items[index] != item:
        items.insert(index, item)
