"""`make run` twice in a row on one broker shows the same first screen (issue 15).

The demo runs each scenario in a fresh namespace on the stream clock, so nothing an
earlier run left on the broker can change what the next shows, and each scenario's live
outputs are compared with its offline replay by the demo itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from kafka import KafkaAdminClient

from tests.integration.harness import REPO, free_port

CHANGE = re.compile(r"^2022-\d\d-\d\d \d\d:\d\d  (assign|release|monitor|mark|extend|reclassify)\b")


def demo(bootstrap: str) -> subprocess.CompletedProcess[str]:
    port = bootstrap.rsplit(":", 1)[1]
    return subprocess.run(
        [sys.executable, "-m", "streams.demo", "--port", port, "--web-port", str(free_port()),
         "--scenario", "z22"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "240", "NO_COLOR": "1"})


@pytest.mark.integration
def test_two_runs_in_a_row_show_the_same_code_changes(broker):
    first, second = demo(broker), demo(broker)
    for done in (first, second):
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        last = done.stdout.strip().splitlines()[-1]
        assert last.startswith("make run: 1 scenario, 234 inputs -> 91 code changes"), last
        assert "live = replay for 1 of 1" in last and "broker 127.0.0.1:" in last
    changes = [sorted(line for line in done.stdout.splitlines() if CHANGE.match(line))
               for done in (first, second)]
    assert len(changes[0]) == 91
    assert changes[0] == changes[1]
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        assert [t for t in admin.list_topics() if t.startswith("demo-")] == []
    finally:
        admin.close()
