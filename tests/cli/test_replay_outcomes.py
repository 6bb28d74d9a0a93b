"""The replay summary says which inputs changed nothing, per stream and why (issue 15)."""

from __future__ import annotations

import orjson

from tests.builders import scan
from tests.cli.conftest import cli


def test_the_summary_counts_no_policy_and_unmatched_per_stream(tmp_path):
    records = [
        # Beijing: no bundled policy governs this checkpoint
        {"topic": "checkpoint.scans.station", "key": "p-outside-0001",
         "value": scan("p-outside-0001", "2022-08-21T10:00:00", "110105", [])},
        # Taiyuan, nothing in the travel history: no rule matches
        {"topic": "checkpoint.scans.station", "key": "p-at-home-0001",
         "value": scan("p-at-home-0001", "2022-08-21T11:00:00", "140105", [])},
    ]
    path = tmp_path / "idle.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    done = cli("replay", path, "--summary")
    assert done.returncode == 0, done.stderr
    assert "decided nothing: station no_policy 1, station unmatched 1" in done.stderr, done.stderr
