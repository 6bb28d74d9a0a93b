"""Session-wide fixtures: one real Kafka broker (deploy/broker.sh) for every suite that
needs one (the chaos suite runs its own, since it stops and restarts it)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Namespace, Worker, worker_pool

REPO = Path(__file__).resolve().parent.parent
# Below Linux's ephemeral range (32768-60999): a client socket may take any port in that
# range while a test has the broker stopped, and the broker could not bind it again.
PORT = int(os.environ.get("CHECKPOINT_TEST_KAFKA_PORT", "19092"))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The chaos tests last: in `make test` (tests/lanes.sh) they then run after the CPU
    lane has ended, since a worker only about keeps up with their feed on a busy machine."""
    items.sort(key=lambda item: "tests/chaos" in str(item.fspath))


@pytest.fixture
def ns(broker: str) -> Namespace:
    """This test's topics (prefixed) and consumer group on the shared broker."""
    return Namespace(broker)


@pytest.fixture
def workers(ns: Namespace, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start real workers in this test's namespace; all are stopped when the test ends."""
    yield from worker_pool(ns, tmp_path)


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """A fresh single-node KRaft broker on 127.0.0.1 for the whole test session."""
    env = {**os.environ, "KAFKA_PORT": str(PORT), "KAFKA_CONTROLLER_PORT": str(PORT + 1),
           "KAFKA_FRESH": "1"}
    subprocess.run(["bash", str(REPO / "deploy" / "broker.sh"), "start"], env=env, check=True)
    try:
        yield f"127.0.0.1:{PORT}"
    finally:
        subprocess.run(["bash", str(REPO / "deploy" / "broker.sh"), "stop"], env=env, check=False)
