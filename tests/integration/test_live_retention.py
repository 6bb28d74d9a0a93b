"""Retention live (issue 16): once nothing in a person's state can matter, the worker
deletes it: a tombstone on the persons changelog, 404 on look-up, a counter."""

from __future__ import annotations

import time
import urllib.request

import pytest

from tests.builders import scan
from tests.integration.harness import last_values


def record(value: dict) -> dict:
    return {"topic": "checkpoint.scans.station", "key": value["person"], "value": value}


def tombstones(bootstrap: str, topic: str, timeout: float = 60.0) -> dict[bytes | None, bytes | None]:
    """The changelog's last value per key, once some key's last value is a tombstone."""
    deadline = time.monotonic() + timeout
    last: dict[bytes | None, bytes | None] = {}
    while time.monotonic() < deadline:
        last = last_values(bootstrap, topic, idle_ms=1000)
        if any(value is None for value in last.values()):
            return last
        time.sleep(1)
    return last


@pytest.mark.integration
def test_a_state_that_cannot_matter_is_tombstoned(ns, workers):
    worker = workers(env={"CHECKPOINT_RETENTION_GRACE_DAYS": "0"})
    quiet = scan("ret-live-quiet", "2022-08-21T10:00:00", "140106", [("140702", "2022-08-20")])
    later = scan("ret-live-later", "2022-10-01T10:00:00", "140106", [("140702", "2022-09-30")])
    ns.produce([record(quiet), record(later)])  # the later scan moves the stream clock on
    ns.wait_idle()
    rows = tombstones(ns.bootstrap, f"{ns.app_id}-persons-changelog")
    assert b"ret-live-quiet" in rows and rows[b"ret-live-quiet"] is None, rows.keys()
    assert rows[b"ret-live-later"] is not None  # still inside its lookback
    assert worker.get("/persons/ret-live-quiet")[0] == 404
    assert worker.get("/persons/ret-live-later")[0] == 200
    with urllib.request.urlopen(f"{worker.url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert "checkpoint_person_states_deleted_total 1.0" in text
