"""A compiled JSON Schema check for the hot path, allowed only to say "valid".

The contract's validator (`contracts.validator`, the `jsonschema` package) is the judge of
every input, and the reason codes and details of dead letters come from its errors. It
costs about 2 ms for a scan with a 14-day itinerary, which made it the largest single
cost of a worker. `jsonschema-rs` compiles the same schemas (same files, same `$ref`s,
draft 2020-12) and answers in about 20 µs.

`accepts(name, value)` is True only when the compiled validator accepts `value`; the
caller then skips the reference validator. When it says anything else (invalid, not
installed, a conversion it cannot make), the reference validator runs as before and
decides. Decisions are therefore unchanged as long as compiled-valid implies
reference-valid, which is made to hold by construction:

* formats: the compiled validator calls the very checks `contracts.FORMAT_CHECKER` uses;
* patterns: Rust's regex engine differs from Python's `re` in two ways that matter.
  ``$`` (Python also matches before a final newline) only makes Rust stricter; ``\\s``
  does not match ``\\x1c``-``\\x1f`` and ``\\x85`` in Rust, which Python counts as
  whitespace, so every ``\\s`` is rewritten with the explicit set of characters Python's
  ``\\s`` matches (`PY_WHITESPACE`). Any other letter escape (``\\d``, ``\\w``, ``\\b``,
  ...) leaves that schema without a compiled check;
* values: only plain JSON (what `orjson.loads` returns) may be given: the caller says so.
  jsonschema-rs reads a tuple as an array, which `jsonschema` does not.

tests/unit/test_fastcheck.py checks the pattern rewrite against every code point and the
decisions of both validators on mutated inputs.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from . import contracts

try:  # an optional accelerator: without it every input goes to the reference validator
    jsonschema_rs: Any = importlib.import_module("jsonschema_rs")
except ImportError:  # pragma: no cover - depends on the installation
    jsonschema_rs = None

#: Keywords whose values are data, not schemas: never rewritten.
_DATA_KEYWORDS = frozenset({"const", "enum", "examples", "default", "description", "title",
                            "$comment"})


#: The characters Python's `re` matches with \\s in a str pattern (str.isspace): ASCII
#: whitespace, the separators \\x1c-\\x1f, NEL and the Unicode spaces. Rust's \\s lacks
#: \\x1c-\\x1f and \\x85 and has \\ufeff. tests/unit/test_fastcheck.py compares this
#: with `re` over every code point; here each one is at least checked to be whitespace.
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
                 + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000")
if not all(re.match(r"\s", c) for c in PY_WHITESPACE):  # pragma: no cover - a Python change
    raise ImportError("fastcheck.PY_WHITESPACE lists a character Python's \\s does not match")


def rust_pattern(pattern: str) -> str | None:
    """`pattern` for Rust's regex engine, matching no more than Python's `re` does.

    None when that cannot be promised: a letter escape other than \\s, or a character
    class written in a way the two engines read differently (nested or set operations,
    a leading ``]``)."""
    out: list[str] = []
    class_start = -1  # index in `out` where the current class's members begin, -1 outside
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            escaped = pattern[index + 1:index + 2]
            if escaped == "s":
                # negated class: exclude what either engine calls whitespace (stricter);
                # elsewhere: match only what Python does too (never more)
                negated = class_start >= 0 and out[class_start - 1] == "^"
                out.append("\\s" + PY_WHITESPACE if negated else
                           PY_WHITESPACE if class_start >= 0 else f"[{PY_WHITESPACE}]")
            elif escaped and not escaped.isalnum() and escaped.isascii():
                out.append(char + escaped)  # an escaped punctuation character
            else:
                return None
            index += 2
            continue
        if class_start >= 0:
            if char == "]":
                if len(out) == class_start:
                    return None  # "[]" / "[^]": a literal "]" in Python, not in every engine
                class_start = -1
            elif char == "[" or pattern[index:index + 2] in ("&&", "--", "~~"):
                return None
        elif char == "[":
            out.append(char)
            index += 1
            if pattern[index:index + 1] == "^":
                out.append("^")
                index += 1
            class_start = len(out)
            continue
        out.append(char)
        index += 1
    return "".join(out)


class _Unsupported(Exception):
    pass


def _rewrite(node: Any) -> Any:
    if isinstance(node, list):
        return [_rewrite(item) for item in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DATA_KEYWORDS:
            out[key] = value
        elif key == "pattern" and isinstance(value, str):
            rewritten = rust_pattern(value)
            if rewritten is None:
                raise _Unsupported(value)
            out[key] = rewritten
        elif key == "patternProperties":
            raise _Unsupported(key)
        elif key == "properties" and isinstance(value, Mapping):
            out[key] = {name: _rewrite(schema) for name, schema in value.items()}
        else:
            out[key] = _rewrite(value)
    return out


#: Answers of a format check kept per format: a scan's dates and times repeat (a 14-day
#: itinerary holds at most 14 distinct dates, a busy hour few distinct days), and the
#: check is a pure function of the string. Bounded: a full cache starts over.
FORMAT_CACHE_LIMIT = 4096


def _format(check: Any, raises: Any, cache: dict[str, bool], instance: object) -> bool:
    """`FORMAT_CHECKER.conforms(instance, name)`, minus its lookups (see jsonschema)."""
    if isinstance(instance, str):
        known = cache.get(instance)
        if known is not None:
            return known
    try:
        answer = bool(check(instance))
    except raises:
        answer = False
    if isinstance(instance, str):
        if len(cache) >= FORMAT_CACHE_LIMIT:
            cache.clear()
        cache[instance] = answer
    return answer


@functools.cache
def _validator(name: str) -> Any:
    """The compiled validator for schema `name`, or None (no accelerator, or unsupported)."""
    if jsonschema_rs is None:
        return None
    try:
        documents = {}
        for file_name, path in contracts.schema_files().items():
            try:
                document = _rewrite(contracts.load_schema(file_name, path.parent))
            except _Unsupported:
                continue  # a schema referring to this one then fails to compile: no fast path
            documents[document["$id"]] = document
        registry = jsonschema_rs.Registry(list(documents.items()))
        schema = _rewrite(contracts.load_schema(name))
        formats: dict[str, Callable[..., bool]] = {
            fmt: functools.partial(_format, check, raises, {})
            for fmt, (check, raises) in contracts.FORMAT_CHECKER.checkers.items()}
        return jsonschema_rs.validator_for(schema, registry=registry, validate_formats=True,
                                           formats=formats)
    except Exception:  # unsupported pattern, unknown keyword, library change: no fast path
        return None


def available(name: str) -> bool:
    return _validator(name) is not None


def accepts(name: str, value: Any) -> bool:
    """True only if `value` (plain JSON) is certainly valid against schema `name`."""
    validator = _validator(name)
    if validator is None:
        return False
    try:
        return bool(validator.is_valid(value))
    except Exception:  # a value it cannot convert: let the reference validator decide
        return False
