"""Structured logs: one JSON object a line, the call's extra fields, no identity numbers."""

from __future__ import annotations

import io
import logging

import orjson
from mode.utils.logging import setup_logging

from streams.observability import REDACTED, JsonFormatter, logging_config

ID_NUMBER = "11010519491231002X"  # the shape of a resident identity number (a made-up one)


def record(msg: str, *args: object, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("checkpoint_streams", level, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_one_json_object_per_line_with_the_extra_fields():
    line = JsonFormatter(worker="w1:6066").format(record(
        "dead letter", input_id="st-0001", reason="schema_violation", partition=2, offset=17))
    assert "\n" not in line
    event = orjson.loads(line)
    assert event["msg"] == "dead letter"
    assert event["level"] == "info" and event["logger"] == "checkpoint_streams"
    assert event["worker"] == "w1:6066"
    assert event["input_id"] == "st-0001" and event["partition"] == 2 and event["offset"] == 17
    assert event["ts"].endswith("+00:00")


def test_identity_numbers_are_redacted_everywhere():
    line = JsonFormatter().format(record(
        "scan from %s rejected", ID_NUMBER, input_id=f"st-{ID_NUMBER}",
        detail={"value": ID_NUMBER, "list": [ID_NUMBER.lower()]}))
    assert ID_NUMBER not in line and ID_NUMBER.lower() not in line
    event = orjson.loads(line)
    assert event["msg"] == f"scan from {REDACTED} rejected"
    assert event["input_id"] == f"st-{REDACTED}"
    assert event["detail"] == {"value": REDACTED, "list": [REDACTED]}
    # grouped and full-width spellings too
    grouped = orjson.loads(JsonFormatter().format(record(
        "x", a="110105 19491231 002X", b="110105-19491231-002X",
        c="".join(chr(ord(ch) + 0xFEE0) for ch in ID_NUMBER[:17]) + "X", d="（区）不变")))
    assert grouped["a"] == grouped["b"] == grouped["c"] == REDACTED
    assert grouped["d"] == "（区）不变"  # text without a number is not folded
    # ordinary numbers (offsets, millisecond times, 19-digit ids) are kept
    kept = orjson.loads(JsonFormatter().format(record("x", offset=1795457812610, big="1234567890123456789")))
    assert kept["offset"] == 1795457812610 and kept["big"] == "1234567890123456789"


def test_exceptions_are_one_line_too():
    try:
        raise ValueError(f"bad id {ID_NUMBER}")
    except ValueError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info())
    line = JsonFormatter().format(rec)
    assert "\n" not in line and ID_NUMBER not in line
    assert "ValueError" in orjson.loads(line)["exc"]


def test_the_worker_logging_setup_writes_json(monkeypatch):
    """mode (Faust's worker) merges our config into its own: JSON on stdout at --loglevel."""
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging(loglevel="warning", logging_config=logging_config())
        logging.getLogger("checkpoint_streams").info("not at warning level")
        logging.getLogger("checkpoint_streams").warning("dead letter", extra={"input_id": "st-9"})
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert orjson.loads(lines[0])["input_id"] == "st-9"


def test_the_fast_path_writes_what_the_careful_path_writes(monkeypatch):
    """`format` skips the field-by-field redaction for plain ASCII lines without an
    identity-number shape; every other line, and every type that is not plain JSON,
    takes the careful path. Both give the same line wherever both apply."""
    from datetime import UTC, datetime

    from streams import observability

    formatter = JsonFormatter(worker="w")
    cases = [
        record("code change", output_id="cc-1", caused_by=["st-1", "ra-2"], latency_seconds=0.1),
        record("mixed", when=datetime(2022, 8, 17, tzinfo=UTC), tags={"a"}, pair=("x", 1)),
        record("wide", note="１１０１０５１９４９１２３１００２Ｘ", city="太原"),
        record("long int", value=110105194912310021, key={1: "one"}),
    ]
    fast = [formatter.format(rec) for rec in cases]
    monkeypatch.setattr(observability, "may_hold_number", lambda _line: True)  # careful path
    assert [formatter.format(rec) for rec in cases] == fast
    assert "１１０１" not in fast[2]
