"""Fixtures for the observability tests: the tools CI installs, and the real broker.

promtool, prometheus and docker-compose come from Debian packages that `.ci/run`
installs; a test that needs one fails (never skips) when it is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.harness import REPO

PORT = int(os.environ.get("CHECKPOINT_TEST_KAFKA_PORT", "39092"))


def tool(name: str, package: str) -> str:
    """The path of a command-line tool CI installs, or a loud failure."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: apt-get install {package} (.ci/run does this)",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return tool("promtool", "prometheus")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return tool("prometheus", "prometheus")


@pytest.fixture(scope="session")
def docker_compose() -> str:
    return tool("docker-compose", "docker-compose")


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """The same real broker as tests/integration (same port): reused when it already runs
    (tests/integration started it in this session), else started fresh and stopped after."""
    env = {**os.environ, "KAFKA_PORT": str(PORT), "KAFKA_CONTROLLER_PORT": str(PORT + 1)}
    script = ["bash", str(REPO / "deploy" / "broker.sh")]
    running = subprocess.run([*script, "status"], env=env, capture_output=True).returncode == 0
    if not running:
        subprocess.run([*script, "start"], env={**env, "KAFKA_FRESH": "1"}, check=True)
    try:
        yield f"127.0.0.1:{PORT}"
    finally:
        if not running:
            subprocess.run([*script, "stop"], env=env, check=False)
