"""What a worker's log says about its outputs.

Every code change and alert is on its Kafka topic already (the record downstream systems
and audits read); the log is for an operator watching a worker. One JSON line per code
change cost a worker about a tenth of its CPU at a province's rates (`bench.profile`:
formatting, redaction, the write), so by default code changes are summed up: one line
per interval with their number by kind and colour and the slowest latency. Alerts are
rare and each may page someone: always one line each. `CHECKPOINT_LOG_OUTPUTS=each` logs
every code change too (debugging a deployment, the observability tests).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

log = logging.getLogger("checkpoint_streams")

#: CHECKPOINT_LOG_OUTPUTS values
EACH, SUMMARY = "each", "summary"


class OutputLog:
    """Log lines for emitted code changes and alerts (see the module docstring)."""

    def __init__(self, mode: str = SUMMARY) -> None:
        self.each = mode == EACH
        self._tally: Counter[tuple[str, str, str]] = Counter()
        self._slowest = 0.0

    def emitted(self, topic: str, event: dict[str, Any], stream: str | None,
                latency: float) -> None:
        """One code change (`topic` ending in code-changes) or alert was sent."""
        alert = topic.endswith("alerts")
        if not alert and not self.each:
            self._tally[(event["kind"], event["from"], event["to"])] += 1
            self._slowest = max(self._slowest, latency)
            return
        extra = ({"severity": event["severity"]} if alert
                 else {"from": event["from"], "to": event["to"], "rule": event["rule"]})
        log.info("alert" if alert else "code change", extra={
            "output_id": event["id"], "kind": event["kind"],
            "input_id": (event.get("caused_by") or [None])[0],
            "caused_by": event.get("caused_by"), "stream": stream,
            "latency_seconds": round(latency, 3), **extra})

    def flush(self) -> None:
        """The summary line of the code changes since the last one (none: no line)."""
        if not self._tally:
            return
        log.info("code changes", extra={
            "count": sum(self._tally.values()),
            "by_kind": {f"{kind} {before}->{after}": n
                        for (kind, before, after), n in sorted(self._tally.items())},
            "latency_max_seconds": round(self._slowest, 3)})
        self._tally.clear()
        self._slowest = 0.0
