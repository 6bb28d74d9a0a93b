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


def test_the_performance_settings_are_documented() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    assert "`CHECKPOINT_STATE_CACHE`" in text and "`CHECKPOINT_GC_THRESHOLD`" in text
