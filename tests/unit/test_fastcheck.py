"""The compiled schema check never accepts what the contract's validator rejects.

`codec.check` skips the reference validator only when `fastcheck.accepts` says yes, so
the whole equivalence rests on: compiled-valid implies reference-valid. These tests pin
that for the regex rewrite (every relevant character), the formats, and mutated inputs,
and that the dead letters are the same with and without the fast path.
"""

from __future__ import annotations

import random
import re
import sys

import orjson
import pytest

from streams import codec, contracts, fastcheck
from streams.engine.timeutil import parse_ts
from streams.load import LoadConfig, generate
from streams.topics import INPUT_SCHEMAS

jsonschema_rs = pytest.importorskip("jsonschema_rs")

NOW = parse_ts("2026-03-01T12:00:00+08:00")
#: a valid example of every pattern the input schemas reach, to plant characters into
EXAMPLES = {
    r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$": "st-0001",
    r"^[A-Za-z0-9_-]{8,128}$": "person-0001",
    r"^([0-9]{17}[0-9Xx]|[0-9]{15})$": "110101199003077770",
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$": "2022-08-17T21:05:00.5+08:00",
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$": "2022-08-17",
    r"^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{3}([0-9]{3})?)?)?)?$": "140106",
    r"^[^:\s]{1,32}$": "Z22",
    r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$": "TY0820-R1-high",
}


def characters() -> list[str]:
    """Every code point up to U+3100 plus the rest of the interesting ones and a sample."""
    rng = random.Random(7)
    points = set(range(0x3100)) | {0xFEFF, 0xFFFE, 0xFFFF, 0x1F600, 0x10FFFF, 0xE000}
    points |= {rng.randrange(0x3100, sys.maxunicode + 1) for _ in range(3000)}
    return [chr(p) for p in sorted(points) if not 0xD800 <= p <= 0xDFFF]


def test_python_whitespace_is_exactly_what_re_matches():
    every = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, sys.maxunicode + 1)))
    assert set(re.findall(r"\s", every)) == set(fastcheck.PY_WHITESPACE)


def test_every_input_pattern_is_covered_and_rewritten():
    patterns = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    patterns.add(value)
                elif key not in ("examples", "const", "enum"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for name in ("common", *INPUT_SCHEMAS.values()):
        walk(contracts.load_schema(name))
    assert patterns <= set(EXAMPLES), patterns - set(EXAMPLES)
    assert all(fastcheck.rust_pattern(p) is not None for p in patterns)


@pytest.mark.parametrize("pattern", sorted(EXAMPLES))
def test_rewritten_pattern_never_matches_more_than_python(pattern):
    example = EXAMPLES[pattern]
    python = re.compile(pattern)
    rust = jsonschema_rs.validator_for({"type": "string", "pattern": fastcheck.rust_pattern(pattern)})
    assert python.search(example) and rust.is_valid(example)
    looser = []
    for char in characters():
        for at in (0, 1, len(example) // 2, len(example) - 1, len(example)):
            for text in (example[:at] + char + example[at:], example[:at] + char + example[at + 1:]):
                if rust.is_valid(text) and not python.search(text):
                    looser.append((hex(ord(char)), text))
    assert not looser[:10]


def test_rust_pattern_refuses_escapes_and_classes_it_cannot_promise():
    for pattern in (r"^\d+$", r"\w", r"[a[b]]", r"[]a]", r"[a&&b]", r"\bx", r"\S"):
        assert fastcheck.rust_pattern(pattern) is None, pattern
    assert fastcheck.rust_pattern(r"^a\.b\-c$") == r"^a\.b\-c$"
    assert fastcheck.rust_pattern(r"x\sy") == f"x[{fastcheck.PY_WHITESPACE}]y"


NASTY = ["", " ", "\n", "x\x1c", "Z 22", "a:b", "st-1\n", "2022-02-30", "2022-08-17T21:05:00",
         "2022-02-30T10:00:00+08:00", "2022-08-17T24:00:00+08:00", "990101", "14", "1401",
         "140106001", "１４０１", "high", "HIGH", "lifted", "station", "highway", "pooled",
         "positive", 0, -1, 1.0, 1.5, 11, True, False, None, [], {}, [1], {"a": 1}, 2**62, 1e20,
         "x" * 200, "p" * 7, "p" * 129]


def mutate(value, rng):
    """One random change somewhere in a JSON value: replace, delete or add."""
    value = orjson.loads(orjson.dumps(value))
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, (*path, key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, (*path, index))

    walk(value, ())
    path = rng.choice(paths[1:])
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    action = rng.random()
    if action < 0.2 and isinstance(parent, dict):
        del parent[path[-1]]
    elif action < 0.3 and isinstance(parent, dict):
        parent[rng.choice(["extra", "kind", "level", "result", "trip", "members"])] = rng.choice(NASTY)
    else:
        parent[path[-1]] = rng.choice(NASTY)
    return value


def test_compiled_check_accepts_nothing_the_reference_rejects_and_dead_letters_match(monkeypatch):
    rng = random.Random(2022)
    records = [r for r in generate(LoadConfig(seed=9, scans=300, end=NOW)) if rng.random() < 0.5]
    by_topic = {}
    for record in records:
        by_topic.setdefault(record["topic"], []).append(record["value"])
    samples = []
    for topic, values in sorted(by_topic.items()):
        for _ in range(120 if len(values) > 3 else 40):
            samples.append((topic, mutate(rng.choice(values), rng)))
    limits = codec.Limits(None, None)

    def outcome(topic, value):
        try:
            return ("ok", codec.decode(topic, orjson.dumps(value), NOW, limits))
        except codec.Rejected as rejected:
            return (rejected.reason, rejected.detail, rejected.input_id)

    fast = [outcome(topic, value) for topic, value in samples]
    for topic, value in samples:
        if fastcheck.accepts(INPUT_SCHEMAS[topic], value):
            assert contracts.validator(INPUT_SCHEMAS[topic]).is_valid(value), value
    monkeypatch.setattr(fastcheck, "accepts", lambda name, value: False)
    slow = [outcome(topic, value) for topic, value in samples]
    assert fast == slow
    assert {o[0] for o in fast} >= {"ok", "schema_violation", "unknown_enum", "invalid_area_code"}


def test_trip_number_with_a_python_whitespace_is_rejected_either_way():
    record = next(r for r in generate(LoadConfig(seed=9, scans=50, end=NOW))
                  if r["topic"] == "checkpoint.scans.station")
    for char in "\x1c\x1f\x85\u3000":
        value = {**record["value"], "trip": {**record["value"]["trip"], "number": f"Z{char}22"}}
        assert not fastcheck.accepts("station-scan", value)
        with pytest.raises(codec.Rejected) as caught:
            codec.decode("checkpoint.scans.station", orjson.dumps(value), NOW, codec.Limits(None, None))
        assert caught.value.reason == "schema_violation"


def test_only_plain_json_takes_the_fast_path():
    record = next(r for r in generate(LoadConfig(seed=9, scans=50, end=NOW))
                  if r["topic"] == "checkpoint.scans.station")
    value = {**record["value"], "travel": tuple(record["value"]["travel"])}  # not JSON: a tuple
    with pytest.raises(codec.Rejected) as caught:
        codec.check("checkpoint.scans.station", value, NOW, codec.Limits(None, None))
    assert caught.value.reason == "schema_violation"
