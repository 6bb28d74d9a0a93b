"""Faust hot-path fix: the producer lookup every send makes.

Every `topic.send()` and every table changelog write in faust-streaming 0.15 goes through
`Topic.publish_message`, which awaits `app.maybe_start_producer()`. That method is
decorated with mode's `@stampede`, whose wrapper (mode 0.7, `StampedeWrapper`) awaits
`asyncio.sleep(0)` three times on *every* call, long after the producer started: three
trips through the event loop per message produced. `install(app)` gives this app
instance a `maybe_start_producer` that returns the producer directly once it has started
(outside transactions, which this project does not use), and defers to the original
stampede-protected start otherwise. Removing it made a worker drain the same backlog
about 1.5x faster (bench/README.md).

Upstream: no issue tracks it; tests/unit/test_runtime_pins.py fails when an upgrade
changes `App.maybe_start_producer` or `StampedeWrapper`.
"""

from __future__ import annotations

from typing import Any


def install(app: Any) -> None:
    original = app.maybe_start_producer  # mode's StampedeWrapper for this app instance

    async def maybe_start_producer() -> Any:
        producer = app.producer
        if producer.started and not app.in_transaction:
            return producer
        return await original()

    # `stampede` is a non-data descriptor: an instance attribute takes precedence
    app.__dict__["maybe_start_producer"] = maybe_start_producer
