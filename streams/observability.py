"""Metrics endpoint, Faust's own sensors, consumer lag and structured logs (to be filled)."""

from __future__ import annotations

from typing import Any


def install(app: Any) -> None:
    """Wire observability into the Faust app; called once at import of `streams.app`."""
