"""The policy lifecycle (C8) as pure functions: describe, diff, back-test, publish.

A policy goes from a file to the workers in four steps, each answerable before the next:

1. *validate*: the file passes the policy schema and the engine's own checks
   (`streams.engine.policy.load_policy`);
2. *diff*: what changes, rule by rule, in words (`diff_policies`);
3. *back-test*: a recording replayed under the policies in force and under the new one,
   and who would have got a different code, by rule (`backtest`);
4. *publish*: the validated, self-contained document goes to the compacted topic
   `checkpoint.policies` keyed by policy id (`publication`); every worker reads that
   topic from the beginning and adds each document to its `PolicyBook`
   (`apply_publication`). Because the book answers "which policy is in force here, at
   this instant?" on every input, a published policy with a future `valid_from` takes
   over at that instant, with no restart.

Nothing here performs I/O or reads a clock: callers pass files' contents, records and
`now`. The CLI (`streams.cli`) and the live worker (`streams.app`) are the shells.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from . import contracts
from .engine.policy import (
    COLOUR_RANK,
    MARK_RANK,
    Measure,
    Policy,
    PolicyBook,
    PolicyError,
    Rule,
    _rule,
    _schema_validator,
)
from .engine.timeutil import format_ts, parse_ts

DOCUMENT_SCHEMA = "policy-document"
#: code-change kinds that start a control (a blue mark is a `mark` event)
CONTROL_STARTS = frozenset({"assign", "monitor", "mark"})

# ------------------------------------------------------------------------- in words
TRIGGER_WORDS = {
    "arrival": "on arrival",
    "exposed_trip": "a passenger of an exposed trip",
    "close_contact": "a close contact",
    "secondary_contact": "a secondary contact",
    "companion": "a spatiotemporal companion",
    "big_data_push": "a big-data push not yet excluded",
    "positive_result": "a positive PCR result",
}
PHASE_WORDS = {
    "centralized_isolation": "centralized isolation",
    "home_isolation": "home isolation",
    "home_health_monitoring": "home health monitoring",
    "self_health_monitoring": "self health monitoring",
    "community_management": "community management",
    "verification": "verification",
}
_PROVINCES = {"11": "Beijing", "12": "Tianjin", "14": "Shanxi", "31": "Shanghai", "44": "Guangdong",
              "46": "Hainan", "50": "Chongqing", "54": "Tibet", "61": "Shaanxi", "65": "Xinjiang"}


def _area_with(levels: Sequence[str]) -> str:
    """`[high, medium]` -> "a high- or medium-risk area"; cases are reported, not graded."""
    graded = [level for level in levels if level != "cases"]
    parts = []
    if graded:
        words = [f"{level}-" for level in graded[:-1]] + [f"{graded[-1]}-risk"]
        parts.append("a " + (words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1])
                     + " area")
    if "cases" in levels:
        parts.append("an area with cases reported (not yet graded)")
    return " or ".join(parts)


def _province(code: str) -> str:
    from . import areas

    english = _PROVINCES.get(code)
    chinese = areas.name(code)
    if english and chinese:
        return f"{english} ({code} {chinese})"
    return f"province {code}" + (f" ({chinese})" if chinese else "")


def describe_when(trigger: str, when: Mapping[str, Any]) -> str:
    """The rule's condition as an operator would say it."""
    if trigger != "arrival":
        return TRIGGER_WORDS.get(trigger, trigger)
    parts = []
    for condition, argument in when.items():
        if condition == "visited_area_level":
            parts.append(f"stayed in {_area_with(argument)}")
        elif condition == "visited_county_level":
            parts.append(f"stayed in a county holding {_area_with(argument)}")
        elif condition == "visited_city_level":
            parts.append(f"stayed in a city holding {_area_with(argument)}")
        elif condition == "visited_province":
            parts.append("stayed in " + " or ".join(_province(code) for code in argument))
        elif condition == "outside_province":
            parts.append("came from outside the province")
        elif condition == "inbound_quarantine_days":
            parts.append(f"came from abroad after {argument} days' quarantine at the entry point")
        else:
            parts.append(f"{condition} {argument}")
    return "on arrival, " + (" and ".join(parts) if parts else "anyone")


def describe_code(code: str, mark: str | None) -> str:
    words = "code unchanged" if code == "unchanged" else f"{code} code"
    return words + (f", {mark} mark" if mark else "")


def describe_measure(measure: Measure) -> str:
    parts = []
    if measure.phases:
        parts.append(" + ".join(f"{p.days} day{'s' if p.days != 1 else ''} "
                                f"{PHASE_WORDS.get(p.kind, p.kind)}" for p in measure.phases))
    if measure.pcr_days:
        parts.append("PCR on day" + ("s " if len(measure.pcr_days) > 1 else " ")
                     + ", ".join(map(str, measure.pcr_days)))
    if measure.landing_test:
        parts.append("landing test")
    if measure.release == "auto":
        parts.append("released automatically at the end" if measure.phases else "no control")
    elif measure.release == "tests" and measure.tests is not None:
        parts.append(f"released after {measure.tests.count} negative tests within "
                     f"{measure.tests.within_hours} h")
    else:
        parts.append("released by an operator")
    return "; ".join(parts)


def describe_rule(rule: Rule) -> str:
    """One line: condition -> code; measure."""
    return (f"{describe_when(rule.trigger, rule.when)} -> {describe_code(rule.code, rule.mark)}; "
            f"{describe_measure(rule.measure)}")


def describe_window(policy: Policy) -> str:
    until = f" until {format_ts(policy.valid_until)}" if policy.valid_until is not None else ""
    return f"from {format_ts(policy.valid_from)}{until}"


# ----------------------------------------------------------------------------- diff
@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two policies; `words` say it for people."""

    kind: str  # policy | added | removed | changed | decides | moved
    rule: str | None
    words: str
    old: str | None = None  # rule id in the old policy (a renamed rule has both)
    details: tuple[str, ...] = ()  # for `changed`: one line per aspect that changed

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "rule": self.rule, "old_rule": self.old, "words": self.words,
                "details": list(self.details)}


@dataclass(slots=True)
class PolicyDiff:
    old: Policy
    new: Policy
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.changes)

    def to_json(self) -> dict[str, Any]:
        return {"old": self.old.ref(), "new": self.new.ref(), "differs": self.differs,
                "changes": [c.to_json() for c in self.changes], "unchanged": self.unchanged}


def _header_changes(old: Policy, new: Policy) -> Iterable[Change]:
    def change(words: str) -> Change:
        return Change("policy", None, words)

    if old.id != new.id:
        yield change(f"id: {old.id} -> {new.id}")
    if old.version != new.version:
        yield change(f"version: {old.version} -> {new.version}")
    if old.jurisdiction != new.jurisdiction:
        yield change(f"jurisdiction: {old.jurisdiction} -> {new.jurisdiction}")
    if (old.valid_from, old.valid_until) != (new.valid_from, new.valid_until):
        yield change(f"in force: {describe_window(old)} -> {describe_window(new)}")
    if old.lookback_days != new.lookback_days:
        yield change(f"lookback: {old.lookback_days} days -> {new.lookback_days} days")
    if old.title.get("en") != new.title.get("en"):
        yield change(f"title: {old.title.get('en')!r} -> {new.title.get('en')!r}")


def _rule_changes(old: Rule, new: Rule) -> list[str]:
    words = []
    if old.trigger != new.trigger or dict(old.when) != dict(new.when):
        words.append(f"applies: {describe_when(old.trigger, old.when)} -> "
                     f"{describe_when(new.trigger, new.when)}")
    if (old.code, old.mark) != (new.code, new.mark):
        words.append(f"code: {describe_code(old.code, old.mark)} -> {describe_code(new.code, new.mark)}")
    if old.measure != new.measure:
        words.append(f"measure: {describe_measure(old.measure)} -> {describe_measure(new.measure)}")
    if dict(old.reason) != dict(new.reason):
        words.append("reason: reworded")
    return words


def _pair_rules(old: Policy, new: Policy) -> list[tuple[Rule | None, Rule | None]]:
    """Match rules by id, then by the same trigger and condition (a renamed rule)."""
    pairs: list[tuple[Rule | None, Rule | None]] = []
    unmatched_old = [r for r in old.rules if new.rule(r.id) is None]
    taken: set[str] = set()
    for rule in new.rules:
        before = old.rule(rule.id)
        if before is None:
            before = next((r for r in unmatched_old if r.id not in taken and r.trigger == rule.trigger
                           and dict(r.when) == dict(rule.when)), None)
        if before is not None:
            taken.add(before.id)
        pairs.append((before, rule))
    pairs.extend((r, None) for r in unmatched_old if r.id not in taken)
    return pairs


def diff_policies(old: Policy, new: Policy) -> PolicyDiff:
    """Rule by rule, in words: what a reader of NEW must know that OLD did not say.

    Rules are paired by id, else by identical trigger and condition (versions often
    rename rules). The order of arrival rules matters (the first that matches decides),
    so a pair whose relative order changed is reported as moved.
    """
    diff = PolicyDiff(old, new)
    diff.changes.extend(_header_changes(old, new))
    pairs = _pair_rules(old, new)
    for before, after in pairs:
        if after is None and before is not None:
            diff.changes.append(Change("removed", before.id, f"removed {before.id}: {describe_rule(before)}",
                                       old=before.id))
        elif before is None and after is not None:
            diff.changes.append(Change("added", after.id, f"added {after.id}: {describe_rule(after)}"))
        elif before is not None and after is not None:
            words = _rule_changes(before, after)
            renamed = f" (was {before.id})" if before.id != after.id else ""
            if words:
                diff.changes.append(Change("changed", after.id, f"changed{renamed}: " + "; ".join(words),
                                           old=before.id, details=tuple(words)))
            else:
                diff.unchanged.append(after.id + renamed)
    # Other triggers take the first rule of their kind: say when another rule now decides.
    for trigger in dict.fromkeys(r.trigger for r in (*old.rules, *new.rules)):
        if trigger == "arrival":
            continue
        before = next(iter(old.rules_on(trigger)), None)
        after = next(iter(new.rules_on(trigger)), None)
        if before is not None and after is not None and before.id != after.id \
                and not any(b is before and a is after for b, a in pairs):
            diff.changes.append(Change(
                "decides", after.id, f"{TRIGGER_WORDS.get(trigger, trigger)}: now decided by "
                f"{after.id} ({describe_code(after.code, after.mark)}; {describe_measure(after.measure)}) "
                f"instead of {before.id} ({describe_code(before.code, before.mark)}; "
                f"{describe_measure(before.measure)})", old=before.id))
    # first-match order of paired rules, per trigger
    kept = [(b, a) for b, a in pairs if b is not None and a is not None]
    for trigger in dict.fromkeys(a.trigger for _, a in kept):
        same = [(b, a) for b, a in kept if a.trigger == trigger and b.trigger == trigger]
        old_order = [b.id for b in old.rules if any(b is p[0] for p in same)]
        new_order = [a.id for a in new.rules if any(a is p[1] for p in same)]
        mapped = [next(b.id for b, a in same if a.id == rid) for rid in new_order]
        if mapped != old_order:
            diff.changes.append(Change("moved", None, f"order of {trigger} rules (first match "
                                       f"decides): {', '.join(old_order)} -> {', '.join(new_order)}"))
    return diff


# ------------------------------------------------------------------------ backtest
@dataclass(frozen=True, slots=True)
class Verdict:
    """The strictest code a person got in a run, and the rule that first gave it."""

    code: str = "green"
    mark: str | None = None
    rule: str | None = None
    policy: str | None = None
    measure: str = ""  # the measure in words

    @property
    def label(self) -> str:
        return self.code + (f" ({self.mark} mark)" if self.mark and self.mark != self.code else "")

    def treats_alike(self, other: Verdict) -> bool:
        """Same code, mark and measure (a renamed rule that does the same is no difference)."""
        return (self.code, self.mark, self.measure) == (other.code, other.mark, other.measure)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "mark": self.mark, "rule": self.rule, "policy": self.policy,
                "measure": self.measure}


def measure_words(measure: Mapping[str, Any]) -> str:
    from .engine.policy import Phase, TestsRelease

    tests = measure.get("tests")
    return describe_measure(Measure(
        phases=tuple(Phase(p["kind"], p["days"]) for p in measure.get("phases", ())),
        pcr_days=tuple(measure.get("pcr_days", ())), landing_test=bool(measure.get("landing_test")),
        release=measure.get("release", "auto"),
        tests=TestsRelease(tests["count"], tests["within_hours"]) if tests else None))


def verdicts(outputs: Iterable[Mapping[str, Any]]) -> dict[str, Verdict]:
    """Per person, from a run's outputs: the strictest (colour, mark) any control started."""
    found: dict[str, Verdict] = {}
    for record in outputs:
        value = record["value"]
        if not str(record["topic"]).endswith("checkpoint.code-changes"):
            continue
        if value["kind"] not in CONTROL_STARTS:
            continue
        person = value["person"]
        current = found.get(person, Verdict())
        rank = (COLOUR_RANK[value["to"]], MARK_RANK[value.get("mark")])
        if current.rule is None or rank > (COLOUR_RANK[current.code], MARK_RANK[current.mark]):
            found[person] = Verdict(value["to"], value.get("mark"), value["rule"],
                                    value["policy"]["id"], measure_words(value["measure"]))
    return found


@dataclass(slots=True)
class Backtest:
    """Who would get a different code under the new policy, grouped by rule."""

    new: Policy
    effective_from: int
    replaced: list[str]
    persons: int
    old: dict[str, Verdict]
    new_verdicts: dict[str, Verdict]
    inputs: int = 0
    outputs_old: int = 0
    outputs_new: int = 0

    def differences(self) -> list[tuple[str, Verdict, Verdict]]:
        people = sorted(set(self.old) | set(self.new_verdicts))
        pairs = [(p, self.old.get(p, Verdict()), self.new_verdicts.get(p, Verdict())) for p in people]
        return [(p, before, after) for p, before, after in pairs if not before.treats_alike(after)]

    def code_changed(self) -> list[tuple[str, Verdict, Verdict]]:
        return [d for d in self.differences() if (d[1].code, d[1].mark) != (d[2].code, d[2].mark)]

    def by_rule(self, sample: int = 3) -> list[dict[str, Any]]:
        """(old rule, old code) -> (new rule, new code): how many persons, a few of them."""
        groups: dict[tuple[Any, ...], list[str]] = {}
        for person, before, after in self.differences():
            key = (before.rule, before.label, after.rule, after.label,
                   (before.code, before.mark) != (after.code, after.mark),
                   before.measure != after.measure)
            groups.setdefault(key, []).append(person)
        rows = [{"old_rule": k[0], "old_code": k[1], "new_rule": k[2], "new_code": k[3],
                 "code_differs": k[4], "measure_differs": k[5], "persons": len(v),
                 "examples": v[:sample]} for k, v in groups.items()]
        rows.sort(key=lambda r: (-r["persons"], str(r["old_rule"]), str(r["new_rule"])))
        return rows

    def to_json(self) -> dict[str, Any]:
        differences = self.differences()
        return {
            "policy": self.new.ref(),
            "effective_from": format_ts(self.effective_from),
            "replaces": self.replaced,
            "inputs": self.inputs,
            "persons": self.persons,
            "different_code": len(self.code_changed()),
            "different_measure_only": len(differences) - len(self.code_changed()),
            "unchanged": self.persons - len(differences),
            "outputs": {"old": self.outputs_old, "new": self.outputs_new},
            "by_rule": self.by_rule(),
            "persons_differing": [{"person": p, "old": b.to_json(), "new": a.to_json()}
                                  for p, b, a in differences],
        }


def backtest_book(book: PolicyBook, new: Policy, first_event: int | None,
                  effective_from: int | None = None) -> tuple[PolicyBook, int, list[str]]:
    """The book a back-test runs the new policy in.

    A policy under test usually takes effect in the future, after everything recorded. So
    the test asks "what if NEW had been in force for its jurisdiction throughout the
    recording": NEW is back-dated to `effective_from` (default: the recording's first
    event, when NEW starts later) and the policies of the same jurisdiction it would have
    superseded in that span are set aside. Returns the book, the effective start and the
    policies set aside (`id vN`).
    """
    start = new.valid_from
    if effective_from is not None:
        start = effective_from
    elif first_event is not None and first_event < new.valid_from:
        start = first_event
    dated = replace(new, valid_from=start, _by_id={}, _by_trigger={})
    set_aside = [p for p in book.policies if p.id == new.id or (
        p.jurisdiction == new.jurisdiction and start <= p.valid_from < new.valid_from)]
    kept = [p for p in book.policies if p not in set_aside]
    return PolicyBook([*kept, dated]), start, [f"{p.id} v{p.version}" for p in set_aside]


def backtest(records: Sequence[Any], book: PolicyBook, new: Policy, *,
             until: int | None = None, effective_from: int | None = None,
             dead_letters: int = 0,
             progress: Callable[[int], None] | None = None) -> Backtest:
    """Replay `records` (from `streams.replay.read_recording`) under `book` and under
    `book` with `new`, and compare per person (see `verdicts`)."""
    from .replay import Replay

    first = min((r.event_time for r in records), default=None)
    trial_book, start, replaced = backtest_book(book, new, first, effective_from)
    runs = []
    for policies in (book, trial_book):
        run = Replay(policies)
        for record in records:
            run.feed(record)
            if progress is not None:
                progress(1)
        if until is not None:
            run.advance_to(until)
        runs.append(run)
    old_run, new_run = runs
    return Backtest(
        new=new, effective_from=start, replaced=replaced,
        persons=len(set(old_run.states) | set(new_run.states)),
        old=verdicts(old_run.outputs), new_verdicts=verdicts(new_run.outputs),
        inputs=len(records) + dead_letters, outputs_old=len(old_run.outputs),
        outputs_new=len(new_run.outputs))


# ------------------------------------------------------------------------ publishing
def policy_document(policy: Policy) -> dict[str, Any]:
    """The policy as one self-contained document (included rule sets inlined), in the
    policy file format (streams/policies/policy.schema.json)."""
    rules = []
    for rule in policy.rules:
        raw: dict[str, Any] = {"id": rule.id, "trigger": rule.trigger}
        if rule.when:
            raw["when"] = dict(rule.when)
        raw["code"] = rule.code
        if rule.mark is not None:
            raw["mark"] = rule.mark
        raw["measure"] = rule.measure.to_json()
        raw["reason"] = dict(rule.reason)
        if rule.source:
            raw["source"] = rule.source
        rules.append(raw)
    document: dict[str, Any] = {
        "id": policy.id, "kind": "policy", "version": policy.version, "title": dict(policy.title),
    }
    if policy.source:
        document["source"] = policy.source
    document.update({
        "jurisdiction": policy.jurisdiction,
        "valid_from": format_ts(policy.valid_from),
        "valid_until": format_ts(policy.valid_until) if policy.valid_until is not None else None,
        "lookback_days": policy.lookback_days,
        "rules": rules,
    })
    return document


def document_digest(document: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def publication(policy: Policy, published_by: str, now: int) -> dict[str, Any]:
    """The message `policy publish` sends to `checkpoint.policies` (key: `policy.id`).

    Valid against schemas/policy-document.schema.json; the embedded `policy` passes the
    policy file schema and the engine's checks again on every worker.
    """
    document = policy_document(policy)
    return {
        "id": policy.id,
        "version": policy.version,
        "jurisdiction": policy.jurisdiction,
        "valid_from": format_ts(policy.valid_from),
        "published_at": format_ts(now),
        "published_by": published_by,
        "digest": document_digest(document),
        "policy": document,
    }


def policy_from_document(document: Mapping[str, Any], origin: str = "published policy") -> Policy:
    """Validate a self-contained policy document and build the engine's `Policy`.

    The same checks as loading a file (`load_policy`): the policy schema, rule checks,
    unique rule ids, a sensible validity window. Documents on the topic must be
    self-contained: `include` is refused (workers may not have the rule set files).
    """
    if not isinstance(document, Mapping):
        raise PolicyError(f"{origin}: a policy document is a mapping")
    errors = sorted(_schema_validator().iter_errors(dict(document)), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top)"
        raise PolicyError(f"{origin}: {where}: {errors[0].message}")
    if document.get("kind") == "ruleset":
        raise PolicyError(f"{origin}: is a rule set, not a policy")
    if document.get("include"):
        raise PolicyError(f"{origin}: published documents are self-contained (no include)")
    rules = [_rule(raw) for raw in document["rules"]]
    duplicates = [rid for rid, n in Counter(r.id for r in rules).items() if n > 1]
    if duplicates:
        raise PolicyError(f"{origin}: duplicate rule id {duplicates[0]}")
    valid_from = parse_ts(document["valid_from"])
    valid_until = parse_ts(document["valid_until"]) if document.get("valid_until") else None
    if valid_until is not None and valid_until <= valid_from:
        raise PolicyError(f"{origin}: valid_until is not after valid_from")
    return Policy(id=document["id"], version=document["version"], title=dict(document["title"]),
                  jurisdiction=document["jurisdiction"], valid_from=valid_from,
                  valid_until=valid_until, lookback_days=document["lookback_days"],
                  rules=tuple(rules), source=document.get("source", ""), path=origin)


def read_publication(message: bytes | Mapping[str, Any]) -> Policy:
    """Check a `checkpoint.policies` message (envelope, digest, policy) -> `Policy`.

    Raises `PolicyError` with a one-line reason: the worker dead-letters such a message
    (reason `schema_violation`) and keeps its book unchanged.
    """
    if isinstance(message, bytes | bytearray | memoryview):
        try:
            value = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            raise PolicyError(f"published policy: not valid JSON ({exc})") from None
    else:
        value = dict(message)
    if not isinstance(value, dict):
        raise PolicyError("published policy: a message is one JSON object")
    errors = sorted(contracts.validator(DOCUMENT_SCHEMA).iter_errors(value),
                    key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top)"
        raise PolicyError(f"published policy: {where}: {errors[0].message}")
    origin = f"published policy {value['id']} v{value['version']}"
    document = value["policy"]
    if document_digest(document) != value["digest"]:
        raise PolicyError(f"{origin}: digest does not match the document")
    if (document["id"], document["version"]) != (value["id"], value["version"]):
        raise PolicyError(f"{origin}: envelope and document name different policies")
    return policy_from_document(document, origin)


def apply_publication(book: PolicyBook, message: bytes | Mapping[str, Any] | None,
                      key: str | bytes | None = None) -> tuple[PolicyBook, Policy | None]:
    """Add one `checkpoint.policies` message to a book: what a worker calls per message.

    Returns the new book and the policy it added, or the same book and None when the
    message changes nothing: an older or equal version of a policy the book already has
    (redelivery, or a bundled file newer than the publication), or a tombstone (None) —
    withdrawing a policy is not supported, publish a new version instead. A published
    version replaces every other version of the same policy id. Raises `PolicyError` for
    an invalid message or a reused version number with different content.
    """
    if message is None:
        return book, None
    policy = read_publication(message)
    if key is not None:
        text = key.decode() if isinstance(key, bytes) else key
        if text != policy.id:
            raise PolicyError(f"published policy {policy.id}: key {text!r} is not the policy id")
    current = book.get(policy.id)
    if current is not None:
        if current.version > policy.version:
            return book, None
        if current.version == policy.version:
            if document_digest(policy_document(current)) == document_digest(policy_document(policy)):
                return book, None
            raise PolicyError(f"published policy {policy.id} v{policy.version}: version already "
                              "in force with different content (publish a new version)")
    return book.with_policy(policy), policy
