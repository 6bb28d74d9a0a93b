"""Performance settings read from the environment (documented in docs/operations.md)."""

from __future__ import annotations

import pytest

from streams.settings import settings


def test_state_cache_defaults_to_twenty_thousand_states(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHECKPOINT_STATE_CACHE", raising=False)
    assert settings().state_cache == 20_000


def test_state_cache_is_set_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKPOINT_STATE_CACHE", "150000")
    monkeypatch.setenv("CHECKPOINT_GC_THRESHOLD", "700")
    assert (settings().state_cache, settings().gc_threshold) == (150_000, 700)


def test_producer_batches_default_to_512_kib_and_are_set_by_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHECKPOINT_PRODUCER_BATCH_BYTES", raising=False)
    assert settings().producer_batch_bytes == 524_288
    monkeypatch.setenv("CHECKPOINT_PRODUCER_BATCH_BYTES", "16384")
    assert settings().producer_batch_bytes == 16_384


def test_the_worker_hands_its_batch_size_and_partitioner_to_faust(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """In a process of its own: importing the app builds the worker (data directory, gc)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "CHECKPOINT_PRODUCER_BATCH_BYTES": "65536",
           "CHECKPOINT_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", "from streams.app import app; "
                          "from streams.changelog import partitioner; "
                          "print(app.conf.producer_max_batch_size, "
                          "app.producer.partitioner is partitioner)"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["65536", "True"]


def test_the_performance_settings_are_documented() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    assert "`CHECKPOINT_STATE_CACHE`" in text and "`CHECKPOINT_GC_THRESHOLD`" in text
    assert "`CHECKPOINT_PRODUCER_BATCH_BYTES`" in text
