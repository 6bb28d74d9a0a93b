"""The single place code loads the message contract (``schemas/``).

The JSON Schema files and ``schemas/asyncapi.yaml`` are the public contract of every
topic (docs/contracts.md). Loading them in one module keeps the engine, the CLI, the
scenario tools and the contract tests agreeing on the same files: nobody hard-codes a
topic name, a key field or a partition count that the contract already states.

This module deliberately imports neither Faust nor Kafka, so that tools and tests can
validate messages and read topic settings without a broker or an app.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

#: Where the schemas live: ``<repo>/schemas`` (next to the ``streams`` package), unless
#: ``CHECKPOINT_SCHEMAS`` points elsewhere (an installed package, a deployment that ships
#: the contract separately). Read once at import: the contract does not change while a
#: process runs.
SCHEMA_DIR: Path = Path(
    os.environ.get("CHECKPOINT_SCHEMAS") or Path(__file__).resolve().parent / "schemas"
)

SCHEMA_SUFFIX = ".schema.json"
ASYNCAPI_FILE = "asyncapi.yaml"
EXTENSION = "x-checkpoint-streams"


def _check_date_time(instance: object) -> bool:
    """RFC 3339 date-time with an offset, checked with the standard library.

    jsonschema only asserts ``format: date-time`` when the optional ``rfc3339-validator``
    package is installed, which is not a project dependency. The schemas' regex already
    enforces the shape and the offset; this adds calendar validity (no 2022-02-30).
    """
    if not isinstance(instance, str):
        return True
    try:
        parsed = datetime.fromisoformat(instance)
    except ValueError:
        return False
    return parsed.tzinfo is not None


def _format_checker() -> FormatChecker:
    """Draft 2020-12's default checks, plus a stdlib ``date-time`` check if it is missing."""
    checker = FormatChecker(list(Draft202012Validator.FORMAT_CHECKER.checkers))
    if "date-time" not in checker.checkers:
        checker.checks("date-time", raises=())(_check_date_time)
    return checker


#: Format checker used by every validator made here: a superset of
#: ``Draft202012Validator.FORMAT_CHECKER`` (anything it rejects is rejected here too).
FORMAT_CHECKER: FormatChecker = _format_checker()


def schema_files(schema_dir: Path | None = None) -> dict[str, Path]:
    """Schema name (file name without ``.schema.json``) -> path, for every schema file."""
    directory = schema_dir or SCHEMA_DIR
    return {
        path.name[: -len(SCHEMA_SUFFIX)]: path
        for path in sorted(directory.glob("*" + SCHEMA_SUFFIX))
    }


def load_schema(name: str, schema_dir: Path | None = None) -> dict[str, Any]:
    """The parsed schema ``name`` (e.g. ``"station-scan"``)."""
    path = (schema_dir or SCHEMA_DIR) / f"{name}{SCHEMA_SUFFIX}"
    if not path.is_file():
        raise KeyError(f"no schema {name!r} in {path.parent}")
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


@cache
def _registry(schema_dir: Path) -> Registry[Any]:
    resources: list[tuple[str, Resource[Any]]] = []
    for name, path in schema_files(schema_dir).items():
        contents = json.loads(path.read_text(encoding="utf-8"))
        uri = contents.get("$id")
        if not isinstance(uri, str) or not uri.endswith("/" + path.name):
            # Relative $refs ("common.schema.json#/$defs/person") resolve against $id, so
            # an $id that does not end in the file name would silently point elsewhere.
            raise ValueError(f"schema {name!r}: $id {uri!r} must end with /{path.name}")
        resources.append((uri, DRAFT202012.create_resource(contents)))
    registry: Registry[Any] = Registry().with_resources(resources)
    return registry.crawl()


def load_registry(schema_dir: Path | None = None) -> Registry[Any]:
    """A ``referencing`` registry holding every schema file, keyed by its ``$id``.

    Schemas reference each other with relative ``$ref``s resolved against their ``$id``
    (``https://checkpoint-streams.dev/schemas/...``); the registry serves those URIs from
    the local files, so validation never touches the network. Cached per directory.
    """
    return _registry((schema_dir or SCHEMA_DIR).resolve())


@cache
def _validator(name: str, schema_dir: Path) -> Draft202012Validator:
    schema = load_schema(name, schema_dir)
    return Draft202012Validator(
        schema, registry=_registry(schema_dir), format_checker=FORMAT_CHECKER
    )


def validator(name: str) -> Draft202012Validator:
    """A cached draft 2020-12 validator for schema ``name`` (e.g. ``"station-scan"``).

    Cached because building one resolves and compiles the schema; the engine validates
    every input on the hot path. Formats are asserted (``FORMAT_CHECKER``).
    """
    return _validator(name, SCHEMA_DIR.resolve())


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the contract (``asyncapi.yaml``) describes it.

    ``key`` is the key expression from ``x-checkpoint-streams``: alternatives separated by
    ``|`` (the first whose fields are all present wins); each alternative is dotted field
    paths joined by ``:``, e.g. ``person``, ``sample|tube``, ``area:date``,
    ``person|trip.mode:trip.number:trip.date``; empty for a topic that carries no
    messages (Faust's leader topic). ``config`` holds the Kafka topic configs as strings,
    ready for topic creation. ``message`` is the payload schema name, empty for a topic
    whose values have no JSON Schema (``schema: none``: the tables' changelogs).
    ``managed_by`` is ``faust`` for the topics Faust names and reads itself (the tables'
    changelogs, the leader topic), empty for the application's own.
    """

    name: str
    key: str
    partitions: int
    compacted: bool
    internal: bool
    direction: str
    message: str
    replicas: int = 1
    broadcast: bool = False
    channel: str = ""
    config: dict[str, str] = field(default_factory=dict, hash=False)
    managed_by: str = ""

    def key_for(self, message: Mapping[str, Any]) -> str | None:
        """The Kafka key of ``message`` per the key expression, or None if none applies.

        Values are joined as they appear; producers that normalise (e.g. upper-case trip
        numbers) must do so in the message itself so every topic agrees.
        """
        for alternative in self.key.split("|"):
            parts: list[str] = []
            for path in alternative.split(":"):
                value: Any = message
                for step in path.split("."):
                    value = value.get(step) if isinstance(value, Mapping) else None
                if value is None or isinstance(value, Mapping | list):
                    break
                parts.append(str(value))
            else:
                return ":".join(parts)
        return None


def _config_value(value: object) -> str:
    """Kafka topic configs are strings; lists (cleanup.policy) are comma-separated."""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _resolve_local(document: Mapping[str, Any], node: Any) -> Any:
    """Follow in-document ``$ref``s (``#/components/...``) of the AsyncAPI document."""
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
        ref: str = node["$ref"]
        if not ref.startswith("#/"):
            break
        target: Any = document
        for token in ref[2:].split("/"):
            target = target[token.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def payload_ref(document: Mapping[str, Any], message: Any) -> str:
    """The payload schema ``$ref`` (e.g. ``./station-scan.schema.json``) of a message."""
    resolved = _resolve_local(document, message)
    payload = resolved["payload"]
    schema = payload.get("schema", payload)
    ref = schema["$ref"]
    if not isinstance(ref, str):
        raise ValueError(f"payload $ref must be a string, got {ref!r}")
    return ref


def schema_name(ref: str) -> str:
    """``./station-scan.schema.json#/...`` -> ``station-scan``."""
    file = ref.split("#", 1)[0].rsplit("/", 1)[-1]
    if not file.endswith(SCHEMA_SUFFIX):
        raise ValueError(f"payload $ref {ref!r} is not a *{SCHEMA_SUFFIX} file")
    return file[: -len(SCHEMA_SUFFIX)]


def load_asyncapi(schema_dir: Path | None = None) -> dict[str, Any]:
    """The parsed ``asyncapi.yaml``."""
    path = (schema_dir or SCHEMA_DIR) / ASYNCAPI_FILE
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


@cache
def _topics(schema_dir: Path) -> dict[str, TopicSpec]:
    document = load_asyncapi(schema_dir)
    specs: dict[str, TopicSpec] = {}
    for channel_id, channel in document["channels"].items():
        ext = channel[EXTENSION]
        kafka = channel.get("bindings", {}).get("kafka", {})
        messages = list((channel.get("messages") or {}).values())
        schemaless = ext.get("schema") == "none"
        if len(messages) != 1 and not (schemaless and not messages):
            raise ValueError(f"channel {channel_id}: expected exactly one message "
                             "(none only for a channel with schema: none)")
        if schemaless:
            if any("payload" in _resolve_local(document, m) for m in messages):
                raise ValueError(f"channel {channel_id}: schema: none, but its message has a payload")
            message = ""
        else:
            message = schema_name(payload_ref(document, messages[0]))
        name = channel["address"]
        specs[name] = TopicSpec(
            name=name,
            key=str(ext["key"]),
            partitions=int(kafka["partitions"]),
            compacted=bool(ext["compacted"]),
            internal=bool(ext["internal"]),
            direction=str(ext["direction"]),
            message=message,
            replicas=int(kafka.get("replicas", 1)),
            broadcast=bool(ext.get("broadcast", False)),
            channel=channel_id,
            config={
                str(k): _config_value(v) for k, v in (kafka.get("topicConfiguration") or {}).items()
            },
            managed_by=str(ext.get("managed_by") or ""),
        )
    return specs


def topics() -> dict[str, TopicSpec]:
    """Topic name -> ``TopicSpec`` for every channel in ``asyncapi.yaml`` (cached).

    Returns a fresh dict each call so callers cannot mutate the cached mapping.
    """
    return dict(_topics(SCHEMA_DIR.resolve()))


# ------------------------------------------------------------------ compatibility
#: Released contracts live under ``schemas/released/<version>/`` (the schema files and
#: ``asyncapi.yaml`` exactly as shipped), so the current contract can be checked against
#: the last release before it ships.
RELEASED_DIR: Path = SCHEMA_DIR / "released"

_BOUNDS_LOW = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
_BOUNDS_HIGH = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")


@dataclass(frozen=True)
class Breaking:
    """One incompatible change: which schema, where (a JSON-pointer-like path), what."""

    schema: str
    path: str
    change: str

    def __str__(self) -> str:
        return f"{self.schema}{self.path or '/'}: {self.change}"


def released_versions(released_dir: Path | None = None) -> list[str]:
    """Released contract versions, oldest first (``0.1.0`` < ``0.10.0``)."""
    directory = released_dir or RELEASED_DIR
    names = [p.name for p in directory.iterdir() if p.is_dir()] if directory.is_dir() else []

    def key(name: str) -> tuple[int, ...]:
        return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))

    return sorted(names, key=key)


class _Doc:
    """One schema directory with ``$ref`` resolution across its files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: dict[str, dict[str, Any]] = {}

    def file(self, name: str) -> dict[str, Any]:
        if name not in self.files:
            self.files[name] = json.loads((self.directory / name).read_text(encoding="utf-8"))
        return self.files[name]

    def target(self, where: str, ref: str) -> tuple[str, Any]:
        """What a ``$ref`` found in file ``where`` points to: (its file, the subschema)."""
        file_part, _, pointer = ref.partition("#")
        target_file = file_part.rsplit("/", 1)[-1] if file_part else where
        node: Any = self.file(target_file)
        for token in [t for t in pointer.split("/") if t]:
            node = node[token.replace("~1", "/").replace("~0", "~")]
        return target_file, node


@dataclass
class _View:
    """The constraints of a (sub)schema with its allOf branches folded together."""

    types: frozenset[str] | None = None
    values: frozenset[str] | None = None  # enum/const, as canonical JSON
    patterns: frozenset[str] = frozenset()
    formats: frozenset[str] = frozenset()
    opaque: frozenset[str] = frozenset()  # not / if-then-else, compared as text
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    properties: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    closed: bool = False
    additional: list[tuple[str, Any]] = field(default_factory=list)
    items: list[tuple[str, Any]] = field(default_factory=list)
    alternatives: list[list[tuple[str, Any]]] = field(default_factory=list)
    unique: bool = False


def _accepts(wide: frozenset[str] | None, narrow: frozenset[str] | None) -> bool:
    """Does a `type` of `wide` accept every instance a `type` of `narrow` accepts?"""
    if wide is None:
        return True
    if narrow is None:
        return False
    return all(t in wide or (t == "integer" and "number" in wide) for t in narrow)


def _names(types: frozenset[str] | None) -> list[str]:
    return sorted(types) if types is not None else ["any"]


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


Parts = list[tuple[str, Any]]  # subschemas that all apply, each with the file it is in


def _view(doc: _Doc, parts: Parts) -> _View:
    view = _View()
    stack = list(parts)
    hops = 0
    while stack:
        at, schema = stack.pop()
        if not isinstance(schema, Mapping):
            continue
        if isinstance(schema.get("$ref"), str):  # the target and the sibling keywords apply
            hops += 1
            if hops > 1000:
                raise ValueError(f"{at}: $ref cycle")
            stack.append(doc.target(at, schema["$ref"]))
            schema = {k: v for k, v in schema.items() if k != "$ref"}
        for branch in schema.get("allOf", ()):
            stack.append((at, branch))
        kind = schema.get("type")
        if kind is not None:
            kinds = frozenset([kind] if isinstance(kind, str) else kind)
            view.types = kinds if view.types is None else view.types & kinds
        allowed = ([schema["const"]] if "const" in schema else schema.get("enum"))
        if allowed is not None:
            values = frozenset(_canon(v) for v in allowed)
            view.values = values if view.values is None else view.values & values
        if "pattern" in schema:
            view.patterns |= {schema["pattern"]}
        if "format" in schema:
            view.formats |= {schema["format"]}
        for keyword in ("not", "if", "then", "else", "dependentRequired", "dependentSchemas",
                        "propertyNames", "contains", "prefixItems", "patternProperties"):
            if keyword in schema:
                view.opaque |= {keyword + "=" + _canon(schema[keyword])}
        for keyword in _BOUNDS_LOW:
            if keyword in schema:
                view.low[keyword] = max(view.low.get(keyword, schema[keyword]), schema[keyword])
        for keyword in _BOUNDS_HIGH:
            if keyword in schema:
                view.high[keyword] = min(view.high.get(keyword, schema[keyword]), schema[keyword])
        for name, sub in (schema.get("properties") or {}).items():
            view.properties.setdefault(name, []).append((at, sub))
        view.required |= frozenset(schema.get("required", ()))
        if schema.get("additionalProperties") is False:
            view.closed = True
        elif isinstance(schema.get("additionalProperties"), Mapping):
            view.additional.append((at, schema["additionalProperties"]))
        if "items" in schema:
            view.items.append((at, schema["items"]))
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                view.alternatives.append([(at, alt) for alt in schema[keyword]])
        view.unique = view.unique or bool(schema.get("uniqueItems"))
    return view


class _Comparer:
    def __init__(self, old: _Doc, new: _Doc, schema: str, output: bool) -> None:
        self.old, self.new, self.schema, self.output = old, new, schema, output
        self.found: list[Breaking] = []

    def flag(self, path: str, change: str) -> None:
        self.found.append(Breaking(self.schema, path, change))

    def compare(self, path: str, old: Parts, new: Parts, depth: int = 0) -> None:
        if depth > 40:
            return
        before, after = _view(self.old, old), _view(self.new, new)
        self._scalars(path, before, after)
        for name, parts in before.properties.items():
            if name not in after.properties:
                if after.closed or self.output or name in before.required:
                    self.flag(f"{path}/{name}", "field removed or renamed")
                else:  # an open input schema still accepts it, but nothing reads it any more
                    self.flag(f"{path}/{name}", "field removed or renamed (producers still send it)")
                continue
            self.compare(f"{path}/{name}", parts, after.properties[name], depth + 1)
        for name in sorted(after.required - before.required):
            self.flag(f"{path}/{name}", "new required field")
        if self.output:
            for name in sorted(before.required - after.required):
                self.flag(f"{path}/{name}", "field no longer guaranteed in an output")
        if after.closed and not before.closed:
            self.flag(path, "closed to unknown fields (additionalProperties: false)")
        elif self.output and before.closed and not after.closed:
            self.flag(path, "output opened to unknown fields")
        if before.additional and after.additional:
            self.compare(f"{path}/additionalProperties", before.additional, after.additional,
                         depth + 1)
        elif after.additional and not before.closed:
            self.flag(f"{path}/additionalProperties", "constraints on unknown fields added")
        if before.items and after.items:
            self.compare(f"{path}/items", before.items, after.items, depth + 1)
        elif after.items and not before.items:
            self.flag(f"{path}/items", "item constraints added")
        if after.unique and not before.unique:
            self.flag(path, "uniqueItems added")
        self._alternatives(path, before, after, depth)

    def _scalars(self, path: str, before: _View, after: _View) -> None:
        if not _accepts(after.types, before.types):
            self.flag(path, f"type tightened: {_names(before.types)} -> {_names(after.types)}")
        elif self.output and not _accepts(before.types, after.types):
            self.flag(path, f"output type widened: {_names(before.types)} -> {_names(after.types)}")
        if after.values is not None:
            if before.values is None:
                self.flag(path, "enum/const added")
            elif before.values - after.values:
                self.flag(path, f"enum values removed: {sorted(before.values - after.values)}")
        if self.output and before.values is not None:
            if after.values is None:
                self.flag(path, "output enum/const removed (any value may appear)")
            elif after.values - before.values:
                self.flag(path, f"output enum widened: {sorted(after.values - before.values)}")
        if after.patterns - before.patterns:
            self.flag(path, f"pattern added or changed: {sorted(after.patterns - before.patterns)}")
        if after.formats - before.formats:
            self.flag(path, f"format added: {sorted(after.formats - before.formats)}")
        if after.opaque - before.opaque:
            self.flag(path, "constraint added or changed: "
                            + ", ".join(sorted(o.split("=", 1)[0] for o in after.opaque - before.opaque)))
        for keyword, value in after.low.items():
            if keyword not in before.low or value > before.low[keyword]:
                self.flag(path, f"{keyword} raised to {value}")
        for keyword, value in after.high.items():
            if keyword not in before.high or value < before.high[keyword]:
                self.flag(path, f"{keyword} lowered to {value}")
        if self.output:
            if before.patterns - after.patterns:
                self.flag(path, "output pattern removed or changed")
            for keyword, value in before.low.items():
                if after.low.get(keyword, float("-inf")) < value:
                    self.flag(path, f"output {keyword} lowered")
            for keyword, value in before.high.items():
                if after.high.get(keyword, float("inf")) > value:
                    self.flag(path, f"output {keyword} raised")

    def _alternatives(self, path: str, before: _View, after: _View, depth: int) -> None:
        if not after.alternatives:
            return
        if not before.alternatives:
            self.flag(path, "anyOf/oneOf added")
            return
        for group_old, group_new in zip(before.alternatives, after.alternatives, strict=False):
            for number, old_alt in enumerate(group_old):
                if not any(self._fits(path, [old_alt], [new_alt], depth) for new_alt in group_new):
                    self.flag(f"{path}/anyOf/{number}", "alternative removed or tightened")

    def _fits(self, path: str, old: Parts, new: Parts, depth: int) -> bool:
        probe = _Comparer(self.old, self.new, self.schema, self.output)
        probe.compare(path, old, new, depth + 1)
        return not probe.found


def _channels(directory: Path) -> dict[str, TopicSpec]:
    return dict(_topics(directory.resolve())) if (directory / ASYNCAPI_FILE).is_file() else {}


def compatibility(released: Path, current: Path | None = None) -> list[Breaking]:
    """Every change from the ``released`` contract to ``current`` that breaks a party.

    Inputs (producers are scanners and upstream systems that keep sending what the
    released contract allowed) must accept every message they accepted: a removed or
    renamed field, a new required field, or a tightened type, enum, const, pattern,
    format, bound or ``additionalProperties`` is breaking. Outputs and internal topics
    (consumers were written against the released contract) additionally may not widen
    a type, an enum, a pattern or a bound, nor stop guaranteeing a required field. Adding an optional field
    is compatible both ways (readers ignore fields they do not know). Topic level: a
    removed topic, or a changed key, partition count or compaction, is breaking.

    Conservative where it cannot decide: any change to a pattern or to a ``not``/
    ``if``-``then`` constraint is reported, since regular-language containment is not
    checked.
    """
    current = current or SCHEMA_DIR
    old_doc, new_doc = _Doc(released), _Doc(current)
    old_topics, new_topics = _channels(released), _channels(current)
    direction = {spec.message: spec.direction for spec in old_topics.values()}
    found: list[Breaking] = []
    for name, path in schema_files(released).items():
        file = path.name
        if not (current / file).is_file():
            found.append(Breaking(name, "", "schema removed"))
            continue
        output = direction.get(name, "input") != "input"
        comparer = _Comparer(old_doc, new_doc, name, output)
        comparer.compare("", [(file, old_doc.file(file))], [(file, new_doc.file(file))])
        found.extend(comparer.found)
    for topic, spec in old_topics.items():
        now = new_topics.get(topic)
        if now is None:
            found.append(Breaking("asyncapi", f"/{topic}", "topic removed"))
            continue
        for attribute in ("key", "partitions", "compacted", "message"):
            if getattr(spec, attribute) != getattr(now, attribute):
                found.append(Breaking("asyncapi", f"/{topic}", f"{attribute} changed: "
                                      f"{getattr(spec, attribute)!r} -> {getattr(now, attribute)!r}"))
    return found
