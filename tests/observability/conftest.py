"""Fixtures for the observability tests: the tools CI installs, and the real broker.

promtool, prometheus and docker-compose come from Debian packages that `.ci/run`
installs; a test that needs one fails (never skips) when it is missing.
"""

from __future__ import annotations

import shutil

import pytest


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
