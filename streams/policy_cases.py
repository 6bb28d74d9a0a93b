"""A policy's own test cases: inputs from its notice, and what the notice says follows.

Like CertLogic rule sets, every policy file can carry a cases file next to it
(`<policy>.cases.yaml`, schema `policy-cases.schema.json` beside the policy schema). A
case is a few inputs (risk-area updates, scans, results, notices) in a shorthand close
to how the notice reads, and the code changes they must give. `policy validate` runs
them, `policy publish` refuses a policy whose cases fail, and the test suite runs every
bundled policy's cases.

A case runs through the whole offline pipeline (`streams.replay.Replay`: gate, schema
check, routing, engine, timers) with only the policy under test in its book, so it
checks what a worker would do under that policy and nothing else: an input the policy
does not reach (another jurisdiction, before `valid_from`) ends as `no_policy`, which a
case can expect.

Pure: callers pass the policy and the cases document; nothing here reads a clock.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .engine.policy import CASES_SUFFIX, Policy, PolicyBook, PolicyError
from .engine.timeutil import format_ts, parse_ts
from .topics import CODE_CHANGES, CONTACT_NOTICES, HIGHWAY_SCANS, PCR_RESULTS, RISK_AREAS, STATION_SCANS

SCHEMA_PATH = Path(__file__).resolve().parent / "policies" / "policy-cases.schema.json"
#: the person a case's inputs are about unless they name another
DEFAULT_PERSON = "case-person"
#: shorthand input kind -> topic
INPUT_TOPICS = {"area": RISK_AREAS, "station": STATION_SCANS, "highway": HIGHWAY_SCANS,
                "result": PCR_RESULTS, "notice": CONTACT_NOTICES}
#: expectation keys compared with the event's field of the same name (`code` is `to`)
FIELDS = ("kind", "from", "to", "mark", "rule", "person")


def cases_path(policy_file: Path) -> Path:
    """`taiyuan-2022-03-28.yaml` -> `taiyuan-2022-03-28.cases.yaml` in the same folder."""
    return policy_file.with_name(policy_file.name.split(".")[0] + CASES_SUFFIX)


def is_cases_file(path: Path) -> bool:
    return path.name.endswith(CASES_SUFFIX)


def policy_files(path: Path) -> list[Path]:
    """A path as given on a command line; a directory stands for its policy files."""
    if not path.is_dir():
        return [path]
    return [found for found in sorted(path.glob("*.y*ml"))
            if not is_cases_file(found) and _kind(found) != "ruleset"]


def _kind(path: Path) -> str | None:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # validation says what is wrong with it
    return document.get("kind") if isinstance(document, dict) else None


def policy_of_cases(path: Path) -> Path:
    """The policy file a cases file sits beside (`.yaml` or `.yml`)."""
    stem = path.name[: -len(CASES_SUFFIX)]
    for suffix in (".yaml", ".yml"):
        if (found := path.with_name(stem + suffix)).exists():
            return found
    return path.with_name(stem + ".yaml")


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    import orjson

    schema = orjson.loads(SCHEMA_PATH.read_bytes())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def load_cases(path: Path) -> dict[str, Any]:
    """Read and validate a cases file (PolicyError names the first problem)."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: cannot read the cases: {exc}") from None
    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        raise PolicyError(f"{path}: {where}: {error.message}")
    return document


@dataclass(slots=True)
class CaseResult:
    """One case's verdict: `problems` says what differed, in words."""

    name: str
    rule: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"case": self.name, "rule": self.rule, "ok": self.ok, "problems": self.problems}


@dataclass(slots=True)
class CasesReport:
    """Every case of one policy, and the rules no case covers."""

    policy: str
    results: list[CaseResult]
    uncovered: list[str]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.ok]

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "cases": len(self.results), "failed": len(self.failed),
                "uncovered_rules": self.uncovered,
                "results": [r.to_json() for r in self.results]}


# ----------------------------------------------------------------------- inputs
def _stamp(text: str) -> str:
    """Case times may leave out the seconds and the offset (China Standard Time)."""
    text = str(text)
    if "T" not in text:
        text += "T00:00"
    if "+" not in text[10:] and not text.endswith("Z"):
        text += "+08:00"
    return format_ts(parse_ts(text))


def _message(kind: str, given: Mapping[str, Any], case: str, number: int) -> dict[str, Any]:
    """Expand one shorthand input to the message a producer would send."""
    body = dict(given)
    at = _stamp(body.pop("at"))
    value: dict[str, Any] = {"id": f"{case}-{number:02d}", "event_time": at}
    if kind == "area":
        value.update({"effective_at": at, **body})
        return value
    value["person"] = DEFAULT_PERSON
    if kind in ("station", "highway"):
        area = body.pop("checkpoint")
        value["checkpoint"] = {"id": f"CASE-{kind.upper()}", "kind": kind, "area": str(area)}
        value["travel"] = [{"area": str(a), "date": str(d)}
                           for a, d in (body.pop("travel", None) or {}).items()]
        if kind == "highway":
            value["vehicle"] = {"plate": "晋A00000"}
    elif kind == "result":
        value.update({"kind": "single", "sample": f"S-{case}-{number:02d}",
                      "collected_at": _stamp(body.pop("collected", at))})
    value.update(body)
    if value.get("kind") == "pooled":  # a tube names its members, not one person
        del value["person"], value["sample"]
    elif value.get("kind") == "exposed_trip":  # a trip's passengers are found by the trip
        del value["person"]
    return value


def records(case: Mapping[str, Any]) -> list[Any]:
    """The case's inputs as replay records, in the order written."""
    from .replay import Record

    out = []
    for number, entry in enumerate(case["inputs"], start=1):
        ((kind, given),) = entry.items()
        value = _message(kind, given, case["name"], number)
        key = value.get("area") if kind == "area" else value.get("person")
        out.append(Record.of(INPUT_TOPICS[kind], key, value, line=number))
    return out


# ----------------------------------------------------------------------- checking
def _differences(expected: Mapping[str, Any], event: Mapping[str, Any]) -> list[str]:
    wrong: list[str] = []
    for name, want in expected.items():
        if name == "code":
            name = "to"
        if name in FIELDS:
            got = event.get(name)
        elif name == "policy":
            got = event["policy"]["id"]
        elif name == "release_at":
            got, want = event.get("release_at"), _stamp(want) if want else None
            if got is not None and want is not None and parse_ts(got) == parse_ts(want):
                continue
        elif name == "measure":
            measure = event.get("measure") or {}
            wrong.extend(f"measure.{k}: expected {v!r}, got {measure.get(k)!r}"
                         for k, v in want.items() if measure.get(k) != v)
            continue
        else:  # the schema allows no other key
            raise PolicyError(f"unknown expectation {name!r}")
        if got != want:
            wrong.append(f"{name}: expected {want!r}, got {got!r}")
    return wrong


def _describe(event: Mapping[str, Any]) -> str:
    return f"{event['kind']} {event['from']}->{event['to']} by {event['rule']}"


def run_case(policy: Policy, case: Mapping[str, Any]) -> CaseResult:
    """Replay one case under `policy` alone and compare with what it expects."""
    from .replay import Replay

    result = CaseResult(case["name"], case.get("rule"))
    run = Replay(PolicyBook([policy]))
    try:
        feed = records(case)
    except (KeyError, ValueError) as exc:
        result.problems.append(f"input cannot be built: {exc}")
        return result
    run.run(feed, parse_ts(_stamp(case["until"])) if "until" in case else None)
    changes = [o["value"] for o in run.outputs if o["topic"] == CODE_CHANGES]
    wanted: Sequence[Mapping[str, Any]] = case.get("expect", [])
    for number, (want, got) in enumerate(zip(wanted, changes, strict=False), start=1):
        result.problems.extend(f"change {number} ({_describe(got)}): {p}"
                               for p in _differences(want, got))
    if len(changes) != len(wanted):
        seen = "; ".join(_describe(c) for c in changes) or "none"
        result.problems.append(f"expected {len(wanted)} code change(s), got {len(changes)}: {seen}")
    for status, count in (case.get("outcomes") or {}).items():
        got_count = run.tally.statuses.get(status, 0)
        if got_count != count:
            result.problems.append(f"inputs ending {status}: expected {count}, got {got_count}")
    alerts = [o["value"]["kind"] for o in run.outputs if o["topic"].endswith("checkpoint.alerts")]
    for kind in case.get("alerts", ()):
        if kind not in alerts:
            result.problems.append(f"expected a {kind} alert, got {alerts or 'none'}")
    dead = [o["value"]["reason"] for o in run.outputs if o["topic"].endswith("dead-letters")]
    if dead:
        result.problems.append(f"inputs were dead-lettered (fix the case): {dead}")
    return result


def run_cases(policy: Policy, document: Mapping[str, Any],
              own_rules: Sequence[str] | None = None) -> CasesReport:
    """Every case of `document` under `policy`; rules of the policy (`own_rules`: those
    written in its own file rather than included) that no case names are listed as
    uncovered."""
    if document["policy"] != policy.id:
        raise PolicyError(f"the cases are for {document['policy']}, not {policy.id}")
    results = [run_case(policy, case) for case in document["cases"]]
    covered = {case.get("rule") for case in document["cases"]}
    rules = [rule.id for rule in policy.rules] if own_rules is None else own_rules
    uncovered = [rule for rule in rules if rule not in covered]
    return CasesReport(policy.id, results, uncovered)


def check_policy_file(path: Path, policy: Policy) -> CasesReport | None:
    """The cases next to a policy file, run; None when it has none."""
    found = cases_path(Path(path))
    if not found.is_file():
        return None
    try:
        written = yaml.safe_load(Path(path).read_text(encoding="utf-8")).get("rules") or []
        own = [rule["id"] for rule in written]
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError):
        own = None  # a published document: every rule is its own
    return run_cases(policy, load_cases(found), own)
