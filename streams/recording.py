"""Recordings as data: read JSONL, order by event time, shift to the present.

`rebase` moves every timestamp and date of a recording by the same amount so that a 2022
scenario can be played live today: lookback windows, test days and releases keep their
meaning because days shift by whole days and instants by the same whole days.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from .engine.timeutil import CST, DAY_MS, format_ts, parse_ts

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
    with open(path, "rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]


def by_event_time(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stable event-time order (the order replay processes records in)."""
    indexed = list(enumerate(records))
    indexed.sort(key=lambda pair: (parse_ts(pair[1]["value"]["event_time"]), pair[0]))
    return [record for _, record in indexed]


def _shift(value: Any, days: int) -> Any:
    if isinstance(value, dict):
        return {k: _shift(v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, days) for v in value]
    if isinstance(value, str):
        if _TIMESTAMP.match(value):
            try:
                return format_ts(parse_ts(value) + days * DAY_MS)
            except ValueError:
                return value
        if _DATE.match(value):
            return (date.fromisoformat(value) + timedelta(days=days)).isoformat()
    return value


def rebase(records: list[dict[str, Any]], end_before_ms: int) -> tuple[list[dict[str, Any]], int]:
    """Shift whole days so the latest event lands just before `end_before_ms`.

    Returns the shifted records and the shift in days. Ids keep their text (they are
    identifiers, not times), so a rebased recording still reads like the scenario.
    """
    latest = max(parse_ts(r["value"]["event_time"]) for r in records)
    latest_day = datetime.fromtimestamp(latest / 1000, CST).date()
    target = datetime.fromtimestamp(end_before_ms / 1000, CST)
    days = (target.date() - latest_day).days
    if latest + days * DAY_MS > end_before_ms:
        days -= 1
    shifted = [{**r, "key": _shift_key(r.get("key"), days), "value": _shift(r["value"], days)}
               for r in records]
    return shifted, days


def _shift_key(key: Any, days: int) -> Any:
    """Keys may embed a date (an exposed trip's `mode:number:date`)."""
    if not isinstance(key, str):
        return key
    return re.sub(r"\d{4}-\d{2}-\d{2}",
                  lambda m: (date.fromisoformat(m.group()) + timedelta(days=days)).isoformat(), key)
