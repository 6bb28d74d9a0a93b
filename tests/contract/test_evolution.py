"""Schema evolution: the contract may grow, it may not break the parties using it.

`streams.contracts.compatibility` compares the current schemas with the last release
snapshotted under schemas/released/<version>/. Given the release, When the current
contract is compared, Then nothing breaks; and each kind of breaking change, made on
purpose in a copy, is caught.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streams import codec, contracts
from streams.topics import INPUT_SCHEMAS

SCHEMAS = contracts.SCHEMA_DIR
LATEST = contracts.released_versions()[-1]
RELEASED = contracts.RELEASED_DIR / LATEST
INPUTS = {name: topic for topic, name in INPUT_SCHEMAS.items()}


def test_the_current_contract_is_compatible_with_the_last_release():
    breaking = contracts.compatibility(RELEASED)
    assert not breaking, (f"incompatible with release {LATEST} (make a new major version, or "
                          "make the change additive):\n" + "\n".join(map(str, breaking)))


def test_the_release_snapshot_is_frozen():
    """A snapshot is history: editing it to make the check pass would defeat the check."""
    sums = dict(line.split("  ", 1)[::-1] for line in
                (RELEASED / "SHA256SUMS").read_text().splitlines() if line.strip())
    files = {p.name for p in RELEASED.iterdir() if p.name != "SHA256SUMS"}
    assert files == set(sums)
    for name, digest in sums.items():
        assert hashlib.sha256((RELEASED / name).read_bytes()).hexdigest() == digest, name


# ------------------------------------------------------------- forward compatibility
def _examples(name: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((SCHEMAS / "examples" / name / "valid").glob("*.json"))]


def _grow(value: Any, depth: int = 0) -> Any:
    """Add an unknown optional field to every object a newer producer might extend."""
    if isinstance(value, dict):
        grown = {k: _grow(v, depth + 1) for k, v in value.items()}
        grown["x_added_in_0_2"] = {"firmware": "3.1.4", "note": "ignored by 0.1 readers"}
        return grown
    if isinstance(value, list):
        return [_grow(v, depth + 1) for v in value]
    return value


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_an_input_with_an_added_optional_field_is_accepted(name):
    """Given a message of a newer producer with fields this release does not know,
    When it passes the input gate, Then it is accepted, unknown fields and all."""
    examples = _examples(name)
    assert examples
    for example in examples:
        grown = {**example, "scanner_model": "HX-9", "x_added_in_0_2": {"a": [1, 2]}}
        accepted = codec.check(INPUTS[name], grown, 0, codec.Limits(None, None))
        assert accepted["scanner_model"] == "HX-9"


def test_scans_accept_added_fields_in_nested_input_objects():
    """checkpoint, travel entries, trip and inbound are input shapes: open for additions."""
    for name in ("station-scan", "highway-scan"):
        for example in _examples(name):
            grown = _grow(example)
            assert codec.check(INPUTS[name], grown, 0, codec.Limits(None, None)) == grown


def _copy(src: Path, tmp_path: Path) -> Path:
    target = tmp_path / "schemas"
    target.mkdir()
    for path in src.iterdir():
        if path.is_file():
            shutil.copy(path, target / path.name)
    return target


def _edit(directory: Path, file: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = directory / file
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema, indent=2, ensure_ascii=False))


def test_adding_an_optional_input_field_is_compatible_and_old_messages_still_validate(tmp_path):
    evolved = _copy(SCHEMAS, tmp_path)

    def add_optional(schema: dict[str, Any]) -> None:
        schema["$defs"]["scan-base"]["properties"]["scanner_model"] = {"type": "string",
                                                                      "maxLength": 64}

    _edit(evolved, "common.schema.json", add_optional)
    assert contracts.compatibility(SCHEMAS, evolved) == []
    from jsonschema import Draft202012Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    registry: Registry[Any] = Registry().with_resources(
        (s["$id"], DRAFT202012.create_resource(s))
        for s in (json.loads(p.read_text()) for p in evolved.glob("*.schema.json")))
    for name in ("station-scan", "highway-scan"):
        validator = Draft202012Validator(json.loads((evolved / f"{name}.schema.json").read_text()),
                                         registry=registry)
        for example in _examples(name):
            assert not list(validator.iter_errors(example))
            assert not list(validator.iter_errors({**example, "scanner_model": "HX-9"}))


def test_adding_an_optional_output_field_is_compatible(tmp_path):
    evolved = _copy(SCHEMAS, tmp_path)
    _edit(evolved, "alert.schema.json",
          lambda s: s["properties"].update({"runbook": {"type": "string", "maxLength": 200}}))
    assert contracts.compatibility(SCHEMAS, evolved) == []


# ------------------------------------------------------------ breaking changes caught
def _drop_destination(schema: dict[str, Any]) -> None:
    del schema["$defs"]["scan-base"]["properties"]["destination"]


def _rename_release_at(schema: dict[str, Any]) -> None:
    props = schema["properties"]
    props["release_time"] = props.pop("release_at")
    schema["required"] = ["release_time" if r == "release_at" else r for r in schema["required"]]


def _require_notice(schema: dict[str, Any]) -> None:
    schema["required"] = [*schema["required"], "notice_url"]
    schema["properties"]["notice_url"] = {"type": "string"}


def _tighten_person(schema: dict[str, Any]) -> None:
    schema["$defs"]["person"]["pattern"] = "^[a-z2-7]{52}$"


def _shorter_travel(schema: dict[str, Any]) -> None:
    schema["$defs"]["scan-base"]["properties"]["travel"]["maxItems"] = 100


def _drop_level(schema: dict[str, Any]) -> None:
    schema["$defs"]["level"]["enum"].remove("cases")


def _quarantine_days_as_string(schema: dict[str, Any]) -> None:
    schema["$defs"]["inbound"]["properties"]["quarantine_days"]["type"] = "string"


def _close_trip(schema: dict[str, Any]) -> None:
    schema["$defs"]["trip"]["additionalProperties"] = False


def _new_alert_severity(schema: dict[str, Any]) -> None:
    schema["properties"]["severity"]["enum"].append("critical")


def _new_colour(schema: dict[str, Any]) -> None:
    schema["$defs"]["colour"]["enum"].append("orange")


@pytest.mark.parametrize(("file", "change", "schema", "what"), [
    ("common.schema.json", _drop_destination, "station-scan", "field removed or renamed"),
    ("code-change.schema.json", _rename_release_at, "code-change", "field removed or renamed"),
    ("code-change.schema.json", _rename_release_at, "code-change", "new required field"),
    ("risk-area-update.schema.json", _require_notice, "risk-area-update", "new required field"),
    ("common.schema.json", _tighten_person, "station-scan", "pattern added or changed"),
    ("common.schema.json", _shorter_travel, "highway-scan", "maxItems lowered"),
    ("common.schema.json", _drop_level, "risk-area-update", "enum values removed"),
    ("common.schema.json", _quarantine_days_as_string, "station-scan", "type tightened"),
    ("common.schema.json", _close_trip, "station-scan", "closed to unknown fields"),
    ("alert.schema.json", _new_alert_severity, "alert", "output enum widened"),
    ("common.schema.json", _new_colour, "code-change", "output enum widened"),
])
def test_a_breaking_change_is_caught(tmp_path, file, change, schema, what):
    evolved = _copy(SCHEMAS, tmp_path)
    _edit(evolved, file, change)
    found = contracts.compatibility(SCHEMAS, evolved)
    assert any(b.schema == schema and what in b.change for b in found), "\n".join(map(str, found))


def test_a_removed_schema_and_a_changed_topic_are_caught(tmp_path):
    evolved = _copy(SCHEMAS, tmp_path)
    (evolved / "exposure.schema.json").unlink()
    text = (evolved / "asyncapi.yaml").read_text()
    (evolved / "asyncapi.yaml").write_text(text.replace("key: person", "key: id", 1))
    found = [str(b) for b in contracts.compatibility(SCHEMAS, evolved)]
    assert "exposure/: schema removed" in found
    assert any("key changed: 'person' -> 'id'" in b for b in found), found


def test_synthetic_rules_one_by_one(tmp_path):
    """Each rule on a one-file contract (no AsyncAPI: the schema counts as an input)."""
    base = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://example.test/thing.schema.json", "type": "object",
            "required": ["id"], "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": 64},
                "n": {"type": "number"}, "tags": {"type": "array", "items": {"type": "string"}},
                "kind": {"enum": ["a", "b"]}, "at": {"type": ["string", "null"]}}}

    def verdict(change: Callable[[dict[str, Any]], None]) -> list[str]:
        old, new = tmp_path / "old", tmp_path / "new"
        for d in (old, new):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
        (old / "thing.schema.json").write_text(json.dumps(base))
        changed = json.loads(json.dumps(base))
        change(changed)
        (new / "thing.schema.json").write_text(json.dumps(changed))
        return [b.change for b in contracts.compatibility(old, new)]

    assert verdict(lambda s: None) == []
    assert verdict(lambda s: s["properties"]["n"].update(type="integer")) == [
        "type tightened: ['number'] -> ['integer']"]
    assert verdict(lambda s: s["properties"]["at"].update(type="string"))[0].startswith("type tightened")
    assert verdict(lambda s: s["properties"]["kind"].update(enum=["a", "b", "c"])) == []  # input: wider is fine
    assert verdict(lambda s: s["properties"]["id"].update(maxLength=128)) == []
    assert verdict(lambda s: s["properties"]["id"].update(minLength=2)) == ["minLength raised to 2"]
    assert verdict(lambda s: s["properties"]["tags"]["items"].update(format="date")) == [
        "format added: ['date']"]
    assert verdict(lambda s: s["properties"]["tags"].update(uniqueItems=True)) == ["uniqueItems added"]
    assert verdict(lambda s: s.update(additionalProperties=False)) == [
        "closed to unknown fields (additionalProperties: false)"]
    assert verdict(lambda s: s["properties"].update(extra={"type": "string"})) == []
