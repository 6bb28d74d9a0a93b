"""Contract tests: the JSON Schemas, their examples and the AsyncAPI topic table.

The schemas in ``schemas/`` are a public contract (docs/contracts.md). These tests keep
the files honest on their own terms (valid draft 2020-12, every ``$ref`` resolves, every
example behaves), and keep ``asyncapi.yaml`` in step with the topic table the engine is
built against. They are independent of Faust and Kafka.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from streams import contracts

ROOT = Path(__file__).resolve().parents[2]

SCHEMAS = ROOT / "schemas"
EXAMPLES = SCHEMAS / "examples"
ASYNCAPI = SCHEMAS / "asyncapi.yaml"
SUFFIX = ".schema.json"
ID_BASE = "https://checkpoint-streams.dev/schemas/"

SCHEMA_FILES = sorted(SCHEMAS.glob("*" + SUFFIX))
NAMES = [p.name[: -len(SUFFIX)] for p in SCHEMA_FILES]
MESSAGE_NAMES = [n for n in NAMES if n != "common"]
OUTPUTS = {"code-change", "alert", "dead-letter", "report"}
INPUTS = {
    "station-scan",
    "highway-scan",
    "risk-area-update",
    "pcr-result",
    "contact-notice",
    "operator-command",
}

DAY_MS = 86_400_000

# The topic table the engine is built against (brief / docs/contracts.md), Faust's own
# topics included (the tables' changelogs and the leader topic: schema "" = none).
# name -> (key expression, compacted, partitions, internal, direction, schema)
TOPICS: dict[str, tuple[str, bool, int, bool, str, str]] = {
    "checkpoint.scans.station": ("person", False, 4, False, "input", "station-scan"),
    "checkpoint.scans.highway": ("person", False, 4, False, "input", "highway-scan"),
    "checkpoint.risk-areas": ("area", True, 4, False, "input", "risk-area-update"),
    "checkpoint.pcr-results": ("sample|tube", False, 4, False, "input", "pcr-result"),
    "checkpoint.contact-notices": (
        "person|trip.mode:trip.number:trip.date",
        False,
        4,
        False,
        "input",
        "contact-notice",
    ),
    "checkpoint.operator-commands": ("person", False, 4, False, "input", "operator-command"),
    "checkpoint.policies": ("id", True, 1, False, "input", "policy-document"),
    "checkpoint.code-changes": ("person", False, 4, False, "output", "code-change"),
    "checkpoint.alerts": ("person|subject", False, 4, False, "output", "alert"),
    "checkpoint.dead-letters": ("source.topic", False, 4, False, "output", "dead-letter"),
    "checkpoint.reports": ("area:date", True, 4, False, "output", "report"),
    "checkpoint.internal.person-work": (
        "person|payload.area|payload.trip.mode:payload.trip.number:payload.trip.date",
        False, 4, True, "internal", "person-work"),
    "checkpoint.internal.report-parts": ("area:date", False, 4, True, "internal", "report-part"),
    "checkpoint.internal.exposures": (
        "trip.mode:trip.number:trip.date",
        True,
        4,
        True,
        "internal",
        "exposure",
    ),
    "checkpoint-streams-persons-changelog": ("person", True, 4, True, "internal", ""),
    "checkpoint-streams-report-counts-changelog": ("area:date", True, 4, True, "internal", ""),
    "checkpoint-streams-__assignor-__leader": ("", False, 1, True, "internal", ""),
}
#: Faust's own topics: named by Faust from the app id, no JSON Schema for their values
FAUST_TOPICS = {name for name, spec in TOPICS.items() if not spec[5]}


# ----------------------------------------------------------------------------- helpers
def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def schema(name: str) -> dict[str, Any]:
    result: dict[str, Any] = load_json(SCHEMAS / f"{name}{SUFFIX}")
    return result


@pytest.fixture(scope="module")
def registry() -> Registry[Any]:
    """Built here from the files, independently of streams.contracts."""
    resources = [(load_json(p)["$id"], DRAFT202012.create_resource(load_json(p))) for p in SCHEMA_FILES]
    built: Registry[Any] = Registry().with_resources(resources)
    return built.crawl()


def standard_validator(name: str, registry: Registry[Any]) -> Draft202012Validator:
    return Draft202012Validator(
        schema(name), registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def example_files(kind: str) -> list[tuple[str, Path]]:
    return [
        (name, path) for name in MESSAGE_NAMES for path in sorted((EXAMPLES / name / kind).glob("*.json"))
    ]


def walk(node: Any, path: str = "#") -> Iterator[tuple[str, Any]]:
    """Every (json-pointer-ish path, subschema dict) in a schema document."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key in {"examples", "const", "enum", "default"}:
                continue
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    return document


def resolve_local(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/"):
        target: Any = document
        for token in node["$ref"][2:].split("/"):
            target = target[token]
        node = target
    return node


# ------------------------------------------------------------------------ the schemas
def test_expected_schema_files_exist() -> None:
    assert set(NAMES) == {"common"} | {spec[5] for spec in TOPICS.values() if spec[5]}


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    document = schema(name)
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == f"{ID_BASE}{name}{SUFFIX}"
    assert document["title"].strip()
    assert document["description"].strip()


@pytest.mark.parametrize("name", NAMES)
def test_every_ref_resolves(name: str, registry: Registry[Any]) -> None:
    document = schema(name)
    resolver = registry.resolver(base_uri=document["$id"])
    refs = [(path, node["$ref"]) for path, node in walk(document) if "$ref" in node]
    assert refs, f"{name} references nothing"
    for path, ref in refs:
        assert not ref.startswith(("http:", "https:")), f"{path}: use relative $refs"
        resolver.lookup(ref)  # raises referencing.exceptions.Unresolvable


def test_contracts_registry_matches_files(registry: Registry[Any]) -> None:
    uris = {load_json(p)["$id"] for p in SCHEMA_FILES}
    loaded = contracts.load_registry()
    for uri in uris:
        assert loaded[uri].contents == registry[uri].contents


@pytest.mark.parametrize("name", MESSAGE_NAMES)
def test_embedded_examples_pass(name: str, registry: Registry[Any]) -> None:
    examples = schema(name).get("examples")
    assert examples, f"{name} has no embedded examples"
    for example in examples:
        standard_validator(name, registry).validate(example)
        contracts.validator(name).validate(example)


@pytest.mark.parametrize("name", MESSAGE_NAMES)
def test_example_files_present(name: str) -> None:
    assert len(list((EXAMPLES / name / "valid").glob("*.json"))) >= 2
    assert len(list((EXAMPLES / name / "invalid").glob("*.json"))) >= 3


def test_example_dirs_name_schemas() -> None:
    assert {p.name for p in EXAMPLES.iterdir() if p.is_dir()} == set(MESSAGE_NAMES)


@pytest.mark.parametrize(
    ("name", "path"), example_files("valid"), ids=lambda v: v.stem if isinstance(v, Path) else v
)
def test_valid_example_passes(name: str, path: Path, registry: Registry[Any]) -> None:
    instance = load_json(path)
    standard_validator(name, registry).validate(instance)
    contracts.validator(name).validate(instance)


@pytest.mark.parametrize(
    ("name", "path"), example_files("invalid"), ids=lambda v: v.stem if isinstance(v, Path) else v
)
def test_invalid_example_fails(name: str, path: Path, registry: Registry[Any]) -> None:
    instance = load_json(path)
    assert not standard_validator(name, registry).is_valid(instance), path.name
    assert not contracts.validator(name).is_valid(instance), path.name


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_outputs_are_closed(name: str) -> None:
    """Every object in an output schema rejects unknown fields, so producers cannot drift."""
    document = schema(name)
    assert document["additionalProperties"] is False
    for path, node in walk(document):
        if node.get("type") == "object" and "additionalProperties" not in node:
            pytest.fail(f"{name} {path}: object without additionalProperties: false")
    common = schema("common")["$defs"]
    for shape in ("bilingual", "policy_ref", "measure"):
        assert common[shape]["additionalProperties"] is False


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_inputs_allow_unknown_fields(name: str) -> None:
    def closed(node: Any) -> bool:
        return any(sub.get("additionalProperties") is False for _, sub in walk(node))

    assert not closed(schema(name)), f"{name}: inputs must stay open (forward compatibility)"
    assert not closed(schema("common")["$defs"]["scan-base"])


TYPING_KEYS = {"type", "$ref", "const", "enum", "anyOf", "oneOf", "allOf", "not"}


@pytest.mark.parametrize("name", NAMES)
def test_every_declared_field_is_typed_and_strings_bounded(name: str) -> None:
    for path, node in walk(schema(name)):
        for field, sub in node.get("properties", {}).items():
            overlay = set(sub) <= {"properties", "description"}  # narrows an allOf base
            assert overlay or TYPING_KEYS & set(sub), f"{name} {path}/{field} is untyped"
        if node.get("type") == "string" and not {"enum", "const"} & set(node):
            assert "maxLength" in node, f"{name} {path}: string without maxLength"


def test_size_limits() -> None:
    common = schema("common")["$defs"]
    assert common["scan-base"]["properties"]["travel"]["maxItems"] == 2000
    members = schema("pcr-result")["$defs"]["pooled"]["properties"]["members"]
    assert (members["minItems"], members["maxItems"]) == (1, 50)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2022-08-17T21:05:00+08:00", True),
        ("2022-08-17T13:05:00Z", True),
        ("2022-08-17T21:05:00.123456+08:00", True),
        ("2022-08-17T21:05:00", False),
        ("2022-08-17 21:05:00+08:00", False),
        ("2022-08-17T21:05+08:00", False),
        ("2022-08-17", False),
        ("2022-13-17T21:05:00+08:00", False),
    ],
)
def test_timestamp_requires_offset(value: str, ok: bool, registry: Registry[Any]) -> None:
    probe = {"$ref": f"{ID_BASE}common.schema.json#/$defs/timestamp"}
    v = Draft202012Validator(probe, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert v.is_valid(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("14", True),
        ("1401", True),
        ("140106", True),
        ("140106001", True),
        ("140106001001", True),
        ("1401x", False),
        ("140", False),
        ("14010", False),
        ("1401060010", False),
        ("1401060010011", False),
        ("", False),
    ],
)
def test_area_codes(value: str, ok: bool, registry: Registry[Any]) -> None:
    probe = {"$ref": f"{ID_BASE}common.schema.json#/$defs/area"}
    assert Draft202012Validator(probe, registry=registry).is_valid(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("pZ22passenger001", True),
        ("MFRGGZDFMZTWQ2LK", True),
        ("short", False),
        ("140106199003071234", False),
        ("14010619900307123X", False),
        ("140106900307123", False),
        ("has space in it", False),
    ],
)
def test_person_refs(value: str, ok: bool, registry: Registry[Any]) -> None:
    probe = {"$ref": f"{ID_BASE}common.schema.json#/$defs/person"}
    assert Draft202012Validator(probe, registry=registry).is_valid(value) is ok


# ------------------------------------------------------------------------ AsyncAPI
def test_asyncapi_document_shape() -> None:
    document = asyncapi()
    assert str(document["asyncapi"]) == "3.0.0"
    assert document["info"]["title"] == "checkpoint-streams"
    # The document is the contract of this release: its version is the package's and the
    # newest snapshot under schemas/released/.
    import streams
    from streams import contracts
    assert str(document["info"]["version"]) == streams.__version__
    assert contracts.released_versions()[-1] == streams.__version__
    server = document["servers"]["local"]
    assert (server["host"], server["protocol"]) == ("127.0.0.1:9092", "kafka")


def test_every_topic_in_the_table_exists_with_its_settings() -> None:
    document = asyncapi()
    by_address = {c["address"]: c for c in document["channels"].values()}
    assert set(by_address) == set(TOPICS)
    for topic, (key, compacted, partitions, internal, direction, _) in TOPICS.items():
        channel = by_address[topic]
        ext = channel["x-checkpoint-streams"]
        kafka = channel["bindings"]["kafka"]
        config = kafka["topicConfiguration"]
        faust = {"managed_by": "faust", "schema": "none"} if topic in FAUST_TOPICS else {}
        assert ext == {
            "key": key,
            "compacted": compacted,
            "internal": internal,
            "direction": direction,
            "broadcast": ext["broadcast"],
            **faust,
        }, topic
        assert kafka["topic"] == topic
        assert kafka["partitions"] == partitions
        assert kafka["replicas"] == 1
        assert ("compact" in config["cleanup.policy"]) is compacted, topic
        assert "retention.ms" in config, topic
        # the workers' own topics are checkpoint.internal.*; Faust's are named after the app id
        assert internal is topic.startswith(("checkpoint.internal.", "checkpoint-streams-")), topic
        assert (topic in FAUST_TOPICS) is topic.startswith("checkpoint-streams-"), topic


def test_special_topic_configs() -> None:
    by_address = {c["address"]: c for c in asyncapi()["channels"].values()}
    risk = by_address["checkpoint.risk-areas"]
    assert risk["bindings"]["kafka"]["topicConfiguration"]["min.compaction.lag.ms"] == 15 * DAY_MS
    assert "min.compaction.lag.ms" in risk["description"]
    dead = by_address["checkpoint.dead-letters"]
    assert dead["bindings"]["kafka"]["topicConfiguration"]["retention.ms"] == 30 * DAY_MS
    assert by_address["checkpoint.internal.exposures"]["x-checkpoint-streams"]["broadcast"]


def test_every_payload_ref_points_to_a_schema_file() -> None:
    document = asyncapi()
    used: set[str] = set()
    for channel_id, channel in document["channels"].items():
        if channel["address"] in FAUST_TOPICS:
            continue  # no schema file: test_faust_topics_describe_their_encoding
        assert channel["messages"], channel_id
        for message in channel["messages"].values():
            resolved = resolve_local(document, message)
            payload = resolved["payload"]
            assert payload["schemaFormat"] == "application/schema+json;version=draft-2020-12"
            ref = payload["schema"]["$ref"]
            file = (ASYNCAPI.parent / ref.split("#", 1)[0]).resolve()
            assert file.is_file(), f"{channel_id}: {ref} does not exist"
            used.add(file.name[: -len(SUFFIX)])
            key = resolved["bindings"]["kafka"]["key"]
            assert key["type"] == "string"
            assert key["description"].strip(), f"{channel_id}: describe which field is the key"
            expected = TOPICS[channel["address"]][5]
            assert file.name == f"{expected}{SUFFIX}", channel_id
    assert used == set(MESSAGE_NAMES), "every schema file (except common) is used by a channel"


def test_operations_match_directions() -> None:
    document = asyncapi()
    actions: dict[str, set[str]] = {}
    for name, operation in document["operations"].items():
        channel = resolve_local(document, operation["channel"])
        actions.setdefault(channel["address"], set()).add(operation["action"])
        for message in operation["messages"]:
            ref = message["$ref"]
            assert ref.startswith("#/channels/"), name
            resolve_local(document, message)  # raises KeyError when dangling
    by_address = {c["address"]: c for c in document["channels"].values()}
    for topic, spec in TOPICS.items():
        direction = spec[4]
        expected = {"input": {"receive"}, "output": {"send"}, "internal": {"send", "receive"}}
        if not by_address[topic]["messages"]:  # Faust's leader topic: subscribed, never written
            assert actions.get(topic) == {"receive"}, topic
            continue
        assert actions.get(topic) == expected[direction], topic


def test_faust_topics_describe_their_encoding() -> None:
    """Faust's own topics have no JSON Schema: each says so, its messages (if it carries
    any) describe their encoding and key instead, and nothing claims a payload schema."""
    document = asyncapi()
    by_address = {c["address"]: c for c in document["channels"].values()}
    faust = {"checkpoint-streams-persons-changelog", "checkpoint-streams-report-counts-changelog",
             "checkpoint-streams-__assignor-__leader"}
    assert faust == FAUST_TOPICS
    for topic in FAUST_TOPICS:
        channel = by_address[topic]
        assert "Faust" in channel["title"] and channel["description"].strip(), topic
        for message in channel["messages"].values():
            resolved = resolve_local(document, message)
            assert "payload" not in resolved, topic
            assert "No JSON Schema" in resolved["description"], topic
            key = resolved["bindings"]["kafka"]["key"]
            assert key["type"] == "string" and key["description"].strip(), topic
        if not channel["messages"]:
            assert TOPICS[topic][0] == "" and "no messages" in channel["description"], topic
    persons = by_address["checkpoint-streams-persons-changelog"]
    assert "tombstone" in persons["description"]
    assert persons["bindings"]["kafka"]["topicConfiguration"]["delete.retention.ms"] == DAY_MS


# ------------------------------------------------------------------ streams.contracts
def test_contracts_topics() -> None:
    specs = contracts.topics()
    assert set(specs) == set(TOPICS)
    for topic, (key, compacted, partitions, internal, direction, message) in TOPICS.items():
        spec = specs[topic]
        assert (spec.name, spec.key, spec.compacted, spec.partitions) == (
            topic,
            key,
            compacted,
            partitions,
        )
        assert (spec.internal, spec.direction, spec.message) == (internal, direction, message)
        assert spec.config["cleanup.policy"] == ("compact" if compacted else "delete")
        assert all(isinstance(v, str) for v in spec.config.values())
        assert spec.managed_by == ("faust" if topic in FAUST_TOPICS else ""), topic
        if spec.message:
            contracts.validator(spec.message)  # loads
    assert specs["checkpoint.risk-areas"].config["min.compaction.lag.ms"] == str(15 * DAY_MS)


@pytest.mark.parametrize(
    ("name", "path"), example_files("valid"), ids=lambda v: v.stem if isinstance(v, Path) else v
)
def test_every_valid_example_has_a_key(name: str, path: Path) -> None:
    instance = load_json(path)
    specs = [s for s in contracts.topics().values() if s.message == name]
    assert specs
    for spec in specs:
        assert spec.key_for(instance), f"{spec.name}: no key for {path.name}"


def test_key_expressions() -> None:
    specs = contracts.topics()
    z22 = load_json(EXAMPLES / "contact-notice/valid/z22-exposed-trip-alighting-taiyuan.json")
    assert specs["checkpoint.contact-notices"].key_for(z22) == "train:Z22:2022-08-17"
    assert specs["checkpoint.internal.exposures"].key_for(z22) == "train:Z22:2022-08-17"
    pool = load_json(EXAMPLES / "pcr-result/valid/pingyao-pooled-tube-of-20-positive.json")
    assert specs["checkpoint.pcr-results"].key_for(pool) == "PY-T-0819-07"
    report = load_json(EXAMPLES / "report/valid/taiyuan-yingze-2022-08-17.json")
    assert specs["checkpoint.reports"].key_for(report) == "140106:2022-08-17"
    dead = load_json(EXAMPLES / "dead-letter/valid/invalid-area-code-from-kafka.json")
    assert specs["checkpoint.dead-letters"].key_for(dead) == "checkpoint.scans.station"
    assert specs["checkpoint.scans.station"].key_for({"id": "x"}) is None


def test_validator_is_cached_and_checks_formats() -> None:
    assert contracts.validator("station-scan") is contracts.validator("station-scan")
    with pytest.raises(KeyError):
        contracts.validator("no-such-schema")
    probe = json.loads(
        (SCHEMAS / "examples/station-scan/valid/z22-passenger-lhasa-via-xian.json").read_text(
            encoding="utf-8"
        )
    )
    probe["event_time"] = "2022-02-30T21:05:00+08:00"  # right shape, not a calendar day
    assert not contracts.validator("station-scan").is_valid(probe)


# ------------------------------------------------------- recorded scenarios and the engine
SCENARIOS = sorted((ROOT / "tests" / "scenarios").glob("*.jsonl"))


def records(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_inputs_follow_the_contract(path: Path) -> None:
    """The recorded scenarios are inputs as producers send them: schema and key."""
    specs = contracts.topics()
    for number, record in enumerate(records(path), 1):
        spec = specs[record["topic"]]
        assert spec.direction == "input", f"{path.name}:{number}"
        errors = [e.message for e in contracts.validator(spec.message).iter_errors(record["value"])]
        assert not errors, f"{path.name}:{number}: {errors[:3]}"
        if "key" in record:
            assert spec.key_for(record["value"]) == record["key"], f"{path.name}:{number}"


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_engine_outputs_follow_the_contract(path: Path) -> None:
    """Every output the engine produces for a scenario validates and carries the right key."""
    replay = pytest.importorskip("streams.replay")
    specs = contracts.topics()
    run = replay.replay_file(path, until=10**13)  # far future: every timer fires
    assert run.outputs, path.name
    for record in run.outputs:
        spec = specs[record["topic"]]
        assert spec.direction == "output", record["topic"]
        value = record["value"]
        errors = [e.message for e in contracts.validator(spec.message).iter_errors(value)]
        assert not errors, f"{path.name} {record['topic']} {value.get('id')}: {errors[:3]}"
        assert spec.key_for(value) == record["key"], f"{path.name} {value.get('id')}"
