"""The risk-area register: every area's level *history*, and the exposed trips.

A scan is judged against the levels in force at its event time (a versioned-table join),
so a late scan is judged as of when it happened. Areas are GB/T 2260 codes; a city with
any high, medium or `cases` area is an affected city, the county holding one a county
with risk. Lookups go through per-city and per-county indexes so that judging a scan
costs in proportion to its travel history, not to the size of the register.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .timeutil import parse_ts

LEVEL_RANK = {None: 0, "lifted": 0, "low": 1, "cases": 2, "medium": 3, "high": 4}
RISK_LEVELS = frozenset({"cases", "medium", "high"})


@dataclass(frozen=True, slots=True)
class LevelChange:
    """What one update did: the level before and after at its effective time."""

    area: str
    before: str | None
    after: str
    effective_at: int
    update_id: str
    applied: bool  # False when the same update was already in the history

    @property
    def is_raise(self) -> bool:
        return self.applied and LEVEL_RANK[self.after] > LEVEL_RANK[self.before]


def trip_key(trip: Mapping[str, Any]) -> str:
    """`mode:number:date`, e.g. `train:Z22:2022-08-17`: how exposed trips are matched."""
    return f"{trip['mode']}:{str(trip['number']).upper()}:{trip['date']}"


class Register:
    """Area level histories plus exposed trips; mutated only by `apply_*` methods."""

    def __init__(self) -> None:
        # area -> parallel lists of (effective_at, update_id, level), sorted by time
        self._times: dict[str, list[int]] = {}
        self._entries: dict[str, list[tuple[int, str, str]]] = {}
        self._by_city: dict[str, set[str]] = {}
        self._by_county: dict[str, set[str]] = {}
        self._exposures: dict[str, dict[str, Any]] = {}

    # -- updates -------------------------------------------------------------------
    def apply_update(self, update: Mapping[str, Any]) -> LevelChange:
        """Insert one risk-area update into the history (idempotent by update id)."""
        area: str = update["area"]
        effective = parse_ts(update["effective_at"])
        level: str = update["level"]
        entries = self._entries.setdefault(area, [])
        times = self._times.setdefault(area, [])
        before = self.level_at(area, effective)
        if any(entry[1] == update["id"] for entry in entries):
            return LevelChange(area, before, level, effective, update["id"], applied=False)
        index = bisect.bisect_right(times, effective)
        times.insert(index, effective)
        entries.insert(index, (effective, update["id"], level))
        if len(area) >= 4:
            self._by_city.setdefault(area[:4], set()).add(area)
        if len(area) >= 6:
            self._by_county.setdefault(area[:6], set()).add(area)
        return LevelChange(area, before, level, effective, update["id"], applied=True)

    def raises(self, update: Mapping[str, Any]) -> bool:
        """Does this update raise its area's level at its effective time (over the entry
        before it in the history)? Applies the update first (idempotent), so the answer is
        the same whether or not this register had seen it already."""
        self.apply_update(update)
        entries = self._entries[update["area"]]
        index = next(i for i, entry in enumerate(entries) if entry[1] == update["id"])
        before = entries[index - 1][2] if index else None
        return LEVEL_RANK[entries[index][2]] > LEVEL_RANK[before]

    def apply_exposure(self, notice: Mapping[str, Any]) -> bool:
        """Record an exposed trip; returns False when that notice was already known."""
        key = trip_key(notice["trip"])
        if key in self._exposures and self._exposures[key]["id"] == notice["id"]:
            return False
        self._exposures[key] = dict(notice)
        return True

    # -- queries -------------------------------------------------------------------
    def level_at(self, area: str, at: int) -> str | None:
        found = self.designation_at(area, at)
        return found[0] if found is not None else None

    def designation_at(self, area: str, at: int) -> tuple[str, str] | None:
        """(level, update id) in force for exactly this code, for `caused_by` lists."""
        times = self._times.get(area)
        if not times:
            return None
        index = bisect.bisect_right(times, at)
        if index == 0:
            return None
        _, update_id, level = self._entries[area][index - 1]
        return None if level == "lifted" else (level, update_id)

    def areas_in(self, prefix: str) -> Iterable[str]:
        """Designated areas inside a city (4 digits) or county (6 digits) code."""
        if len(prefix) == 4:
            return self._by_city.get(prefix, ())
        if len(prefix) == 6:
            return self._by_county.get(prefix, ())
        return (a for a in self._entries if a.startswith(prefix))

    def designated_within(
        self, prefix: str, at: int, levels: frozenset[str]
    ) -> Iterator[tuple[str, str, str]]:
        """(area, level, update id) for areas under `prefix` whose level at `at` is in `levels`."""
        for area in self.areas_in(prefix):
            found = self.designation_at(area, at)
            if found is not None and found[0] in levels:
                yield area, found[0], found[1]

    def exposure(self, key: str) -> dict[str, Any] | None:
        return self._exposures.get(key)

    def snapshot(self, at: int) -> list[dict[str, Any]]:
        """The register as of `at`: one row per designated area, for `areas` listings."""
        rows = []
        for area in sorted(self._entries):
            found = self.designation_at(area, at)
            if found is not None:
                rows.append({"area": area, "level": found[0], "update": found[1]})
        return rows

    def history(self, area: str) -> list[tuple[int, str, str]]:
        return list(self._entries.get(area, ()))

    def __len__(self) -> int:
        return len(self._entries)
