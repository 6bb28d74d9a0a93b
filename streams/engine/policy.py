"""Policies are data: versioned, effective-dated rule files, validated when loaded.

The engine never hard-codes a colour or a duration. It asks a `PolicyBook` which policy
is in force for a checkpoint at an instant, and walks that policy's ordered rules. Every
decision therefore names one rule in one file, which is how an operator answers
"why is this person red?".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from .matching import CompiledTrigger, compile_policy
from .timeutil import parse_ts

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
_SCHEMA_PATH = POLICY_DIR / "policy.schema.json"

COLOUR_RANK = {"green": 0, "yellow": 1, "red": 2}
MARK_RANK = {None: 0, "blue": 1, "yellow": 2, "red": 3}


class PolicyError(ValueError):
    """A policy file that cannot be trusted; the message names the file and the fault."""


@dataclass(frozen=True, slots=True)
class Phase:
    kind: str
    days: int


@dataclass(frozen=True, slots=True)
class TestsRelease:
    count: int
    within_hours: int


@dataclass(frozen=True, slots=True)
class Measure:
    phases: tuple[Phase, ...]
    pcr_days: tuple[int, ...]
    landing_test: bool
    release: str  # auto | tests | operator
    tests: TestsRelease | None = None
    _json: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def total_days(self) -> int:
        return sum(phase.days for phase in self.phases)

    @property
    def is_control(self) -> bool:
        """A measure with no duration and no test days is a one-off (the landing test)."""
        return bool(self.phases or self.pcr_days)

    def to_json(self) -> dict[str, Any]:
        """The measure as controls and events carry it: one dict per measure, built once
        and shared (nothing changes it; a state read back from JSON has its own copy)."""
        if self._json:
            return self._json
        out: dict[str, Any] = {
            "phases": [{"kind": p.kind, "days": p.days} for p in self.phases],
            "pcr_days": list(self.pcr_days),
            "landing_test": self.landing_test,
            "release": self.release,
        }
        if self.tests is not None:
            out["tests"] = {"count": self.tests.count, "within_hours": self.tests.within_hours}
        self._json.update(out)
        return self._json


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    trigger: str
    when: Mapping[str, Any]
    code: str  # red | yellow | green | unchanged
    mark: str | None
    measure: Measure
    reason: Mapping[str, str]
    source: str = ""
    _conditions: list[tuple[str, Any]] = field(default_factory=list, compare=False, repr=False)

    @property
    def colour(self) -> str:
        return "green" if self.code == "unchanged" else self.code

    def conditions(self) -> list[tuple[str, Any]]:
        """`when` as (condition, argument) pairs, level lists as frozensets: what the
        engine tests every scan against, prepared once per rule."""
        if not self._conditions and self.when:
            self._conditions.extend(
                (name, frozenset(arg) if name.endswith("_level") else arg)
                for name, arg in self.when.items())
        return self._conditions


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    version: int
    title: Mapping[str, str]
    jurisdiction: str
    valid_from: int
    valid_until: int | None
    lookback_days: int
    rules: tuple[Rule, ...]
    source: str = ""
    path: str = ""
    _by_id: dict[str, Rule] = field(default_factory=dict, compare=False, repr=False)
    _by_trigger: dict[str, tuple[Rule, ...]] = field(default_factory=dict, compare=False,
                                                     repr=False)
    _matchers: dict[str, CompiledTrigger] = field(default_factory=dict, compare=False,
                                                  repr=False)

    def ref(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version}

    def rules_on(self, trigger: str) -> Iterable[Rule]:
        """The rules of one trigger, in policy order."""
        found = self._by_trigger.get(trigger)
        if found is None:
            found = self._by_trigger[trigger] = tuple(r for r in self.rules if r.trigger == trigger)
        return found

    def matcher(self, trigger: str) -> CompiledTrigger | None:
        """The rules of `trigger` compiled for matching (None: the policy has none)."""
        if not self._matchers:
            self._matchers.update(compile_policy(self))
        return self._matchers.get(trigger)

    def rule(self, rule_id: str) -> Rule | None:
        if not self._by_id:
            self._by_id.update({rule.id: rule for rule in self.rules})
        return self._by_id.get(rule_id)


@cache
def _schema_validator() -> Draft202012Validator:
    schema = json.loads(_SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text) if path.suffix in {".yaml", ".yml"} else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise PolicyError(f"{path}: not valid YAML/JSON ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a policy file holds one mapping")
    errors = sorted(_schema_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise PolicyError(f"{path}: {where}: {first.message}")
    return data


def _rule(raw: Mapping[str, Any]) -> Rule:
    m = raw["measure"]
    tests = m.get("tests")
    measure = Measure(
        phases=tuple(Phase(p["kind"], p["days"]) for p in m["phases"]),
        pcr_days=tuple(sorted(m.get("pcr_days", ()))),
        landing_test=bool(m.get("landing_test", False)),
        release=m["release"],
        tests=TestsRelease(tests["count"], tests["within_hours"]) if tests else None,
    )
    if measure.release == "tests" and measure.tests is None:
        raise PolicyError(f"rule {raw['id']}: release 'tests' needs measure.tests")
    return Rule(
        id=raw["id"],
        trigger=raw["trigger"],
        when=dict(raw.get("when") or {}),
        code=raw["code"],
        mark=raw.get("mark"),
        measure=measure,
        reason=dict(raw["reason"]),
        source=raw.get("source", ""),
    )


def load_policy(path: Path, search_dirs: Iterable[Path] = ()) -> Policy:
    """Load, validate and resolve one policy file (its `include`d rule sets too)."""
    path = Path(path)
    data = _read_document(path)
    if data.get("kind") == "ruleset":
        raise PolicyError(f"{path}: is a rule set, not a policy (it has no jurisdiction)")
    rules = [_rule(r) for r in data["rules"]]
    dirs = [path.parent, *search_dirs, POLICY_DIR]
    for name in data.get("include", []):
        included = next((d / f"{name}.yaml" for d in dirs if (d / f"{name}.yaml").exists()), None)
        if included is None:
            raise PolicyError(f"{path}: include {name!r} not found")
        rules.extend(_rule(r) for r in _read_document(included)["rules"])
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise PolicyError(f"{path}: duplicate rule id {rule.id}")
        seen.add(rule.id)
    valid_from = parse_ts(data["valid_from"])
    valid_until = parse_ts(data["valid_until"]) if data.get("valid_until") else None
    if valid_until is not None and valid_until <= valid_from:
        raise PolicyError(f"{path}: valid_until is not after valid_from")
    return Policy(
        id=data["id"],
        version=data["version"],
        title=dict(data["title"]),
        jurisdiction=data["jurisdiction"],
        valid_from=valid_from,
        valid_until=valid_until,
        lookback_days=data["lookback_days"],
        rules=tuple(rules),
        source=data.get("source", ""),
        path=str(path),
    )


class PolicyBook:
    """All known policies, answering "which policy is in force here, now?".

    A city's policy overrides its province's inside the city; within one jurisdiction a
    policy stays in force until the next one's `valid_from` (or its own `valid_until`).
    """

    def __init__(self, policies: Iterable[Policy]) -> None:
        self._by_jurisdiction: dict[str, list[Policy]] = {}
        self._by_id: dict[str, Policy] = {}
        for policy in policies:
            key = f"{policy.id}@{policy.version}"
            if key in self._by_id:
                raise PolicyError(f"policy {key} loaded twice")
            self._by_id[key] = policy
            policy.matcher("arrival")  # compiled when the book is made, not on first use
            self._by_jurisdiction.setdefault(policy.jurisdiction, []).append(policy)
        for versions in self._by_jurisdiction.values():
            versions.sort(key=lambda p: (p.valid_from, p.version))
        self._lookback = max((p.lookback_days for p in self._by_id.values()), default=14)

    @property
    def policies(self) -> list[Policy]:
        return list(self._by_id.values())

    @property
    def max_lookback_days(self) -> int:
        return self._lookback

    def get(self, policy_id: str, version: int | None = None) -> Policy | None:
        matches = [p for p in self._by_id.values() if p.id == policy_id]
        if version is not None:
            matches = [p for p in matches if p.version == version]
        return max(matches, key=lambda p: p.version, default=None)

    def in_force(self, area: str, at: int) -> Policy | None:
        """The policy governing `area` at instant `at` (most specific jurisdiction wins)."""
        for length in (6, 4, 2):
            if len(area) < length:
                continue
            chosen = None
            for policy in self._by_jurisdiction.get(area[:length], ()):
                if policy.valid_from > at:
                    break
                expired = policy.valid_until is not None and at >= policy.valid_until
                chosen = None if expired else policy
            if chosen is not None:
                return chosen
        return None

    def with_policy(self, policy: Policy) -> PolicyBook:
        """A new book where `policy` replaces any policy with the same id (for backtests)."""
        kept = [p for p in self._by_id.values() if p.id != policy.id]
        return PolicyBook([*kept, policy])


#: a policy's test cases sit next to it: `<policy>.cases.yaml` (streams.policy_cases)
CASES_SUFFIX = ".cases.yaml"


def load_policy_dir(directory: Path = POLICY_DIR) -> PolicyBook:
    """Every policy file in a directory (rule sets are loaded through `include`)."""
    policies = []
    for path in sorted(Path(directory).glob("*.y*ml")):
        if path.name.endswith(CASES_SUFFIX):  # a policy's test cases (streams.policy_cases)
            continue
        if yaml.safe_load(path.read_text(encoding="utf-8")).get("kind") == "ruleset":
            continue
        policies.append(load_policy(path))
    if not policies:
        raise PolicyError(f"{directory}: no policy files")
    return PolicyBook(policies)
