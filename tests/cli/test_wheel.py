"""A plain `pip install .` runs (issue 16): the wheel carries the schemas, the policy
schema and the bundled policies, and needs no repository beside it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_installed_wheel_replays_and_validates_without_the_repository(tmp_path: Path):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q",
                    "-w", str(wheels)], check=True, timeout=300)
    [wheel] = wheels.glob("*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    recording = tmp_path / "z22.jsonl"
    recording.write_bytes((REPO / "tests" / "scenarios" / "z22.jsonl").read_bytes())
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("CHECKPOINT_SCHEMAS", None)
    where = subprocess.run([sys.executable, "-c", "import streams.contracts as c; print(c.SCHEMA_DIR)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(target)), where.stdout
    done = subprocess.run([sys.executable, "-m", "streams.cli", "replay", str(recording)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(reconciled)" in done.stderr + done.stdout
    policies = target / "streams" / "policies"  # the policies with their test cases
    checked = subprocess.run([sys.executable, "-m", "streams.cli", "policy", "validate", str(policies)],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr[-2000:]
    assert checked.stdout.count("cases pass") == 4, checked.stdout
