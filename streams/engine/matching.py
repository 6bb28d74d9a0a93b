"""Policies compiled for matching: which rule of a trigger holds, and the updates that
make it hold, for one travel history at one instant.

A policy's rules are tried in order and the first that holds wins (the strictest comes
first). Walking them the way the policy file reads (`evaluate.first_match_walk`, kept as
the reference) asks the register the same questions once per rule. Here the questions
are asked once per decision: for each level, the first update (in travel-history order)
that designates a visited area, its county or its city at that level. A rule's
condition is then a lookup per level it names, and a rule that needs nothing from the
register costs a set test. The answer is the walk's, cause for cause; the tests hold
both to that on the bundled scenarios, generated recordings and a seeded load.

Built once per policy when the policy book is made (`compile_policy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .register import ANY_LEVEL, Known, Register

if TYPE_CHECKING:
    from .policy import Policy, Rule

# condition codes, in the order `when` lists them in a rule
_AREA, _COUNTY, _CITY, _PROVINCE, _OUTSIDE, _INBOUND = range(6)
_CODES = {
    "visited_area_level": _AREA, "visited_county_level": _COUNTY,
    "visited_city_level": _CITY, "visited_province": _PROVINCE,
    "outside_province": _OUTSIDE, "inbound_quarantine_days": _INBOUND,
}

#: level -> (position in travel-history order, update id) of its first designation
FirstByLevel = dict[str, tuple[int, str]]


class Facts:
    """What the register says about one travel history at one instant, looked up the
    first time a rule asks and kept for the next rule."""

    __slots__ = ("_city", "_county", "_own", "_provinces", "areas", "at", "known", "register")

    def __init__(self, areas: list[str], register: Register, at: int, known: Known) -> None:
        self.areas = areas
        self.register = register
        self.at = at
        self.known = known
        self._own: FirstByLevel | None = None
        self._county: FirstByLevel | None = None
        self._city: FirstByLevel | None = None
        self._provinces: set[str] | None = None

    def own(self) -> FirstByLevel:
        """Designations of the visited areas and their prefixes, province first."""
        if self._own is None:
            first: FirstByLevel = {}
            position = 0
            skip: set[str] = set()  # a prefix met again says what it said the first time
            for area in self.areas:
                for level, update in self.register.prefix_designations(
                        area, self.at, self.known, skip):
                    if level not in first:
                        first[level] = (position, update)
                    position += 1
            self._own = first
        return self._own

    def within(self, cut: int) -> FirstByLevel:
        """Designated areas of the counties (`cut` 6) or cities (4) visited."""
        found = self._county if cut == 6 else self._city
        if found is None:
            found = {}
            position = 0
            seen: set[str] = set()
            designated_within = self.register.designated_within
            for area in self.areas:
                if len(area) < cut:
                    continue
                prefix = area[:cut]
                if prefix in seen:
                    continue
                seen.add(prefix)
                for _, level, update in designated_within(prefix, self.at, ANY_LEVEL, self.known):
                    if level not in found:
                        found[level] = (position, update)
                    position += 1
            if cut == 6:
                self._county = found
            else:
                self._city = found
        return found

    def provinces(self) -> set[str]:
        if self._provinces is None:
            self._provinces = {area[:2] for area in self.areas}
        return self._provinces


def _first(found: FirstByLevel, levels: frozenset[str]) -> str | None:
    """The update of the earliest designation at any of `levels`."""
    best: tuple[int, str] | None = None
    for level in levels:
        hit = found.get(level)
        if hit is not None and (best is None or hit[0] < best[0]):
            best = hit
    return best[1] if best is not None else None


class CompiledTrigger:
    """The rules of one trigger of one policy, their conditions as codes."""

    __slots__ = ("jurisdiction", "rules")

    def __init__(self, policy: Policy, rules: tuple[Rule, ...]) -> None:
        self.jurisdiction = policy.jurisdiction[:2]
        compiled = []
        for rule in rules:
            conditions = []
            for name, argument in rule.conditions():
                code = _CODES.get(name)
                if code is None:  # the policy schema forbids this; refuse it when compiling
                    raise ValueError(f"unknown condition {name!r} in rule {rule.id}")
                conditions.append((code, argument))
            compiled.append((rule, tuple(conditions)))
        self.rules = tuple(compiled)

    def first_match(self, facts: Facts, inbound: Mapping[str, Any] | None,
                    ) -> tuple[Rule, list[str]] | None:
        for rule, conditions in self.rules:
            causes: list[str] = []
            for code, argument in conditions:
                found: str | bool | None
                if code == _AREA:
                    found = _first(facts.own(), argument)
                elif code == _COUNTY:
                    found = _first(facts.within(6), argument)
                elif code == _CITY:
                    found = _first(facts.within(4), argument)
                elif code == _PROVINCE:
                    found = any(province in argument for province in facts.provinces())
                elif code == _OUTSIDE:
                    jurisdiction = self.jurisdiction
                    found = any(province != jurisdiction for province in facts.provinces())
                else:
                    found = bool(inbound) and inbound.get("quarantine_days") == argument  # type: ignore[union-attr]
                if not found:
                    break
                if isinstance(found, str):
                    causes.append(found)
            else:
                return rule, causes
        return None


def compile_policy(policy: Policy) -> dict[str, CompiledTrigger]:
    """Every trigger of `policy`, compiled."""
    triggers = sorted({rule.trigger for rule in policy.rules})
    return {trigger: CompiledTrigger(policy, tuple(policy.rules_on(trigger)))
            for trigger in triggers}
