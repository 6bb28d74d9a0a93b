"""The input gate: every rejection is a dead letter with a reason, no raw ID leaks."""

from __future__ import annotations

import orjson
import pytest

from streams import codec
from streams.engine.timeutil import parse_ts

NOW = parse_ts("2022-08-21T10:05:00+08:00")
GOOD = {"id": "st-1", "person": "person-0001", "event_time": "2022-08-21T10:00:00+08:00",
        "checkpoint": {"id": "CP-1", "kind": "station", "area": "140106"},
        "travel": [{"area": "610113", "date": "2022-08-19"}]}
RAW_ID = "11010119900307777X"


def reject(raw: bytes, topic: str = "checkpoint.scans.station", limits=None) -> codec.Rejected:
    with pytest.raises(codec.Rejected) as caught:
        codec.decode(topic, raw, NOW, limits)
    return caught.value


def test_a_good_scan_passes():
    assert codec.decode("checkpoint.scans.station", orjson.dumps(GOOD), NOW) == GOOD


@pytest.mark.parametrize(("raw", "reason"), [
    (b'{"id": "st-1", "person": ', "malformed_json"),
    (b"[1, 2]", "schema_violation"),
    (orjson.dumps({**GOOD, "travel": "610113"}), "schema_violation"),
    (orjson.dumps({k: v for k, v in GOOD.items() if k != "person"}), "schema_violation"),
    (orjson.dumps({**GOOD, "event_time": "2022-08-21T10:00:00"}), "schema_violation"),
    (orjson.dumps({**GOOD, "checkpoint": {**GOOD["checkpoint"], "kind": "airport"}}), "unknown_enum"),
    (orjson.dumps({**GOOD, "travel": [{"area": "990101", "date": "2022-08-19"}]}), "invalid_area_code"),
    (orjson.dumps({**GOOD, "event_time": "2022-08-21T11:00:00+08:00"}), "future_event_time"),
    (orjson.dumps({**GOOD, "note": RAW_ID}), "raw_identity_number"),
    (orjson.dumps({**GOOD, "note": "x" * (codec.MAX_MESSAGE_BYTES + 1)}), "too_large"),
])
def test_each_dead_letter_reason(raw, reason):
    assert reject(raw).reason == reason


def test_stale_event_time_is_rejected_when_a_bound_is_set():
    limits = codec.Limits(max_future_ms=None, max_age_ms=86_400_000)
    old = orjson.dumps({**GOOD, "event_time": "2022-08-01T10:00:00+08:00"})
    assert reject(old, limits=limits).reason == "stale_event_time"


def test_escaped_identity_number_is_caught_after_parsing():
    escaped = orjson.dumps({**GOOD, "note": "x"}).replace(
        b'"x"', b'"' + "".join(f"\\u{ord(c):04x}" for c in RAW_ID).encode() + b'"')
    assert reject(escaped).reason == "raw_identity_number"


def test_dead_letter_keeps_source_and_never_the_raw_number():
    raw = orjson.dumps({**GOOD, "person": RAW_ID})
    rejected = reject(raw)
    letter = codec.dead_letter(codec.Source("checkpoint.scans.station", 2, 41), raw,
                               rejected.reason, rejected.detail + RAW_ID, NOW,
                               keep_original=rejected.keep_original)
    text = orjson.dumps(letter).decode()
    assert RAW_ID not in text and letter["original"] is None
    assert letter["source"] == {"topic": "checkpoint.scans.station", "partition": 2, "offset": 41,
                                "line": None}


def test_deep_nesting_ends_as_a_dead_letter_not_a_crash():
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    assert reject(deep).reason == "malformed_json"
    nested = {**GOOD, "extra": {}}
    cursor = nested["extra"]
    for _ in range(200):  # orjson itself refuses deeper than 254 levels
        cursor["x"] = {}
        cursor = cursor["x"]
    assert codec.decode("checkpoint.scans.station", orjson.dumps(nested), NOW)["id"] == "st-1"


def test_dead_letters_validate_against_their_schema():
    from streams.contracts import validator

    raw = orjson.dumps({**GOOD, "travel": "x"})
    rejected = reject(raw)
    letter = codec.dead_letter(codec.Source("checkpoint.scans.station", 0, 7), raw,
                               rejected.reason, rejected.detail, NOW, input_id=rejected.input_id)
    validator("dead-letter").validate(letter)
