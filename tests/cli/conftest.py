"""Drive `checkpoint-streams` as a user does: a subprocess, its stdout, stderr and exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "tests" / "scenarios"
POLICIES = REPO / "streams" / "policies"
HERE = Path(__file__).resolve().parent
#: a Taiyuan policy whose only difference from taiyuan-2022-08-20 is known (see the file)
STRICTER_MEDIUM = REPO / "docs" / "examples" / "taiyuan-2022-09-01.yaml"

Run = Callable[..., subprocess.CompletedProcess[str]]


def cli(*args: object, env: dict[str, str] | None = None, stdin: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `checkpoint-streams ARGS...` from the repository root, as text."""
    return subprocess.run([sys.executable, "-m", "streams.cli", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, input=stdin, timeout=timeout,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})})


@pytest.fixture
def run() -> Run:
    return cli


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The whole of stderr, checked to be one `error: ...` line and no traceback."""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


# The real broker: the session-wide `broker` fixture in tests/conftest.py.
