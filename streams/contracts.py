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
    os.environ.get("CHECKPOINT_SCHEMAS") or Path(__file__).resolve().parent.parent / "schemas"
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
    ``person|trip.mode:trip.number:trip.date``. ``config`` holds the Kafka topic configs
    as strings, ready for topic creation. ``message`` is the payload schema name.
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
        messages = list(channel["messages"].values())
        if len(messages) != 1:
            raise ValueError(f"channel {channel_id}: expected exactly one message")
        name = channel["address"]
        specs[name] = TopicSpec(
            name=name,
            key=str(ext["key"]),
            partitions=int(kafka["partitions"]),
            compacted=bool(ext["compacted"]),
            internal=bool(ext["internal"]),
            direction=str(ext["direction"]),
            message=schema_name(payload_ref(document, messages[0])),
            replicas=int(kafka.get("replicas", 1)),
            broadcast=bool(ext.get("broadcast", False)),
            channel=channel_id,
            config={
                str(k): _config_value(v) for k, v in (kafka.get("topicConfiguration") or {}).items()
            },
        )
    return specs


def topics() -> dict[str, TopicSpec]:
    """Topic name -> ``TopicSpec`` for every channel in ``asyncapi.yaml`` (cached).

    Returns a fresh dict each call so callers cannot mutate the cached mapping.
    """
    return dict(_topics(SCHEMA_DIR.resolve()))
