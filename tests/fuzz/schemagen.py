"""Hypothesis strategies generated from the project's JSON Schemas.

hypothesis-jsonschema 0.23.1 (the latest release) fails on current Hypothesis
(`'many' object has no attribute 'more'`), so this is a small generator for the subset
of draft 2020-12 the contract uses: $ref across files, allOf, if/then/else, anyOf/oneOf,
enum/const, type, pattern, format (date-time, date), string/number/array/object bounds,
required, additionalProperties. Conditionals are decided on the fields drawn so far
(the discriminator, e.g. `kind`, is required in the base schema), and every instance is
finally checked with the real validator, so what comes out is valid by construction
and by proof.

`overrides` maps a `$ref` (e.g. ``common.schema.json#/$defs/area``) to a strategy, so a
test can draw area codes from real divisions or person references from a small pool.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from streams import contracts

COMMON = "common.schema.json"
SearchStrategy = st.SearchStrategy


def timestamps(lo: datetime = datetime(1900, 1, 1, tzinfo=UTC),
               hi: datetime = datetime(2200, 1, 1, tzinfo=UTC)) -> SearchStrategy[str]:
    """RFC 3339 with an offset, as the contract wants (+08:00, Z or another offset)."""
    offsets = st.sampled_from([timedelta(hours=8), timedelta(0), timedelta(hours=-5),
                               timedelta(hours=5, minutes=45)])

    def fmt(moment: datetime, offset: timedelta, millis: bool) -> str:
        local = moment.astimezone(timezone(offset))
        text = local.isoformat(timespec="milliseconds" if millis else "seconds")
        return text.replace("+00:00", "Z") if offset == timedelta(0) else text

    return st.builds(fmt, st.datetimes(lo.replace(tzinfo=None), hi.replace(tzinfo=None),
                                       timezones=st.just(UTC)), offsets, st.booleans())


class Generator:
    def __init__(self, overrides: Mapping[str, SearchStrategy[Any]] | None = None,
                 max_items: int = 4) -> None:
        self.doc = contracts._Doc(contracts.SCHEMA_DIR)
        self.overrides = dict(overrides or {})
        self.max_items = max_items

    def strategy(self, name: str) -> SearchStrategy[dict[str, Any]]:
        """Valid instances of schema `name` (e.g. ``"station-scan"``)."""
        file = f"{name}.schema.json"
        validator = contracts.validator(name)
        return self._draw([(file, self.doc.file(file))]).filter(validator.is_valid)

    # -- folding -------------------------------------------------------------------
    def _fold(self, parts: list[tuple[str, Any]]) -> dict[str, Any]:
        """All constraints of `parts` (which all apply) in one mapping."""
        out: dict[str, Any] = {"types": None, "values": None, "patterns": [], "nots": [],
                               "format": None, "low": {}, "high": {}, "properties": {},
                               "required": set(), "closed": False, "items": [],
                               "conditionals": [], "alternatives": [], "unique": False}
        stack = list(parts)
        while stack:
            at, schema = stack.pop()
            if not isinstance(schema, Mapping):
                continue
            ref = schema.get("$ref")
            if isinstance(ref, str):
                stack.append(self.doc.target(at, ref))
            for branch in schema.get("allOf", ()):
                stack.append((at, branch))
            if "type" in schema:
                kinds = {schema["type"]} if isinstance(schema["type"], str) else set(schema["type"])
                out["types"] = kinds if out["types"] is None else out["types"] & kinds
            allowed = [schema["const"]] if "const" in schema else schema.get("enum")
            if allowed is not None:
                values = list(allowed)
                out["values"] = values if out["values"] is None else [
                    v for v in out["values"] if v in values]
            if "pattern" in schema:
                out["patterns"].append(schema["pattern"])
            if "not" in schema:
                out["nots"].append((at, schema["not"]))
            if "format" in schema:
                out["format"] = schema["format"]
            for keyword in ("minLength", "minimum", "minItems"):
                if keyword in schema:
                    out["low"][keyword] = max(out["low"].get(keyword, schema[keyword]), schema[keyword])
            for keyword in ("maxLength", "maximum", "maxItems"):
                if keyword in schema:
                    out["high"][keyword] = min(out["high"].get(keyword, schema[keyword]), schema[keyword])
            for prop, sub in (schema.get("properties") or {}).items():
                out["properties"].setdefault(prop, []).append((at, sub))
            out["required"] |= set(schema.get("required", ()))
            if schema.get("additionalProperties") is False:
                out["closed"] = True
            if "items" in schema:
                out["items"].append((at, schema["items"]))
            if "if" in schema:
                out["conditionals"].append((at, schema["if"], schema.get("then"), schema.get("else")))
            for keyword in ("anyOf", "oneOf"):
                if keyword in schema:
                    out["alternatives"].append([(at, alt) for alt in schema[keyword]])
            out["unique"] = out["unique"] or bool(schema.get("uniqueItems"))
        return out

    # -- drawing -------------------------------------------------------------------
    def _draw(self, parts: list[tuple[str, Any]], depth: int = 0) -> SearchStrategy[Any]:
        return _instance(self, parts, depth)

    def _refs(self, parts: list[tuple[str, Any]]) -> set[str]:
        refs = set()
        for at, schema in parts:
            if isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
                ref = schema["$ref"]
                refs.add(ref if ref.split("#")[0] else f"{at}{ref}")
        return refs


def _scalar(gen: Generator, view: dict[str, Any], kind: str) -> SearchStrategy[Any]:
    low, high = view["low"], view["high"]
    if kind == "string":
        if view["format"] == "date-time":
            return timestamps()
        if view["format"] == "date":
            return st.dates().map(lambda d: d.isoformat())
        lo, hi = low.get("minLength", 0), high.get("maxLength", 40)
        if view["patterns"]:
            base = st.from_regex(view["patterns"][0], fullmatch=True)
            for extra in view["patterns"][1:]:
                base = base.filter(lambda s, p=extra: bool(re.search(p, s)))
            return base.filter(lambda s: lo <= len(s) <= hi)
        return st.text(min_size=lo, max_size=min(hi, lo + 40))
    if kind == "integer":
        return st.integers(low.get("minimum"), high.get("maximum"))
    if kind == "number":
        return st.floats(low.get("minimum"), high.get("maximum"), allow_nan=False,
                         allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    raise ValueError(kind)


@st.composite
def _instance(draw: st.DrawFn, gen: Generator, parts: list[tuple[str, Any]], depth: int) -> Any:
    for ref in gen._refs(parts):
        if ref in gen.overrides:
            return draw(gen.overrides[ref])
    view = gen._fold(parts)
    if view["alternatives"]:
        chosen = [draw(st.sampled_from(group)) for group in view["alternatives"]]
        return draw(_instance(gen, [*parts_without_alternatives(parts), *chosen], depth))
    if view["values"] is not None:
        return draw(st.sampled_from(view["values"]))
    kinds = view["types"]
    if kinds is None:
        kinds = {"object"} if view["properties"] or view["required"] else {"string"}
    kind = draw(st.sampled_from(sorted(kinds)))
    if kind == "object":
        return _object(draw, gen, view, depth)
    if kind == "array":
        lo = view["low"].get("minItems", 0)
        hi = min(view["high"].get("maxItems", gen.max_items), max(lo, gen.max_items))
        item = _instance(gen, view["items"] or [("", {})], depth + 1)
        return draw(st.lists(item, min_size=lo, max_size=hi))
    value = draw(_scalar(gen, view, kind))
    for at, negated in view["nots"]:
        assume(not _valid_all(gen, [(at, negated)], value))
    return value


def parts_without_alternatives(parts: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [(at, {k: v for k, v in s.items() if k not in ("anyOf", "oneOf")})
            if isinstance(s, Mapping) else (at, s) for at, s in parts]


def _object(draw: st.DrawFn, gen: Generator, view: dict[str, Any], depth: int) -> dict[str, Any]:
    props: dict[str, list[tuple[str, Any]]] = {k: list(v) for k, v in view["properties"].items()}
    required = set(view["required"])
    obj: dict[str, Any] = {}
    order = sorted(required) + sorted(set(props) - required)
    for name in order:
        if name in required or draw(st.booleans()):
            obj[name] = draw(_instance(gen, props.get(name) or [("", {})], depth + 1))
    # conditionals: decided on what has been drawn; a branch may require or constrain more
    for at, condition, then, otherwise in view["conditionals"]:
        holds = Draft202012Validator(condition).is_valid(obj)
        branch = then if holds else otherwise
        if branch is None:
            continue
        extra = gen._fold([(at, branch)])
        for name, sub in extra["properties"].items():
            props.setdefault(name, []).extend(sub)
        for name in sorted(extra["required"] | (set(extra["properties"]) & set(obj))):
            constraint = props.get(name) or [("", {})]
            if name not in obj or not _valid_all(gen, constraint, obj[name]):
                obj[name] = draw(_instance(gen, constraint, depth + 1))
        if extra["closed"]:
            for name in [n for n in obj if n not in extra["properties"]]:
                del obj[name]
    if view["closed"]:
        for name in [n for n in obj if n not in props]:
            del obj[name]
    return obj


def _valid_all(gen: Generator, parts: list[tuple[str, Any]], value: Any) -> bool:
    registry = contracts._registry(contracts.SCHEMA_DIR.resolve())
    for at, schema in parts:
        base = f"https://checkpoint-streams.dev/schemas/{at}" if at else ""
        wrapped = {"$id": base, **schema} if base and isinstance(schema, Mapping) else schema
        if not Draft202012Validator(wrapped, registry=registry).is_valid(value):
            return False
    return True
