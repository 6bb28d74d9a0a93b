"""Fixtures for tests against the real local Kafka broker (deploy/broker.sh)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Namespace, Worker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def ns(broker: str) -> Namespace:
    return Namespace(broker)


@pytest.fixture
def workers(ns: Namespace, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers in this test's namespace; all are stopped at the end of the test."""
    started: list[Worker] = []

    def start(name: str = "w1", wait: bool = True, **kwargs: object) -> Worker:
        worker = Worker(ns, tmp_path, name=name, **kwargs)  # type: ignore[arg-type]
        started.append(worker)
        return worker.start(wait=wait)

    yield start
    for worker in started:
        worker.stop()
