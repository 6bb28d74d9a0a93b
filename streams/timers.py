"""The worker's timers: releases and other due times, the stream clock's marks, the daily
reports, gauges. Each hands its work to the live shell (`streams.live`)."""

from __future__ import annotations

import logging

from . import metrics
from .app import app, live, settings
from .engine.timeutil import local_day
from .reports import report_areas

log = logging.getLogger("checkpoint_streams")


@app.timer(interval=settings.timer_interval)
async def release_timer() -> None:
    """Hand a tick to the partition of every person whose due time came: releases, missed
    tests, closing test windows are decided and committed like any input."""
    if not live.feed.ready.is_set() or live.recovering:
        return
    ticks = live.due_ticks()
    if ticks:
        await live.send(ticks)
    metrics.PENDING_RELEASES.set(len(live.due))
    metrics.VISITOR_INDEX.set(len(live.core.index))
    metrics.RELEASE_TIMER_LAST_RUN.set_to_current_time()


if settings.clock == "stream":

    @app.timer(interval=0.2)
    async def stream_clock() -> None:
        """Take what became ready without a new input, send the marks that changed
        (streams.runtime.alignment)."""
        if live.feed.ready.is_set() and not live.recovering:
            await live.tick_clock()


@app.timer(interval=settings.refetch_interval)
async def refetch_lost() -> None:
    """Read again what the consumer fetched but Faust never handed to the agent
    (streams.runtime.refetch)."""
    if live.feed.ready.is_set():
        await live.refetch_lost()


@app.timer(interval=3600.0)
async def expire_index() -> None:
    """Visits older than the longest lookback window can no longer change anyone's code."""
    async with live.lock:
        live.core.index.expire(local_day(live.clock()) - live.policies.max_lookback_days - 1)


@app.timer(interval=10.0)
async def state_gauges() -> None:
    """Persons and active controls owned here."""
    counts = {"red": 0, "yellow": 0, "green": 0}
    for colours in live.colours.values():
        for colour in colours:
            counts[colour] += 1
    metrics.PERSONS.set(len(live.colours))
    for colour, count in counts.items():
        metrics.ACTIVE_CONTROLS.labels(colour).set(count)
    metrics.POLICY_IN_FORCE.clear()
    now = live.clock()
    for policy in live.policies.policies:
        if live.policies.in_force(policy.jurisdiction, now) is policy:
            metrics.POLICY_IN_FORCE.labels(policy.jurisdiction, policy.id, str(policy.version)).set(1)


@app.timer(interval=10.0)
async def output_summary() -> None:
    """The log line summing up the code changes sent since the last (streams.outputlog)."""
    live.output_log.flush()


@app.timer(interval=settings.report_interval)
async def daily_reports() -> None:
    """Send each partition's changed counts, and the days it closed, to the report owners
    (`Live.report_parts`; the owners file: `agents.file_part`)."""
    if not live.feed.ready.is_set() or live.recovering:
        return
    async with live.lock:
        parts, rows = live.report_parts(report_areas(live.policies, settings.report_areas))
        live.prune_counts(local_day(live.clock()) - 9)
    if parts or rows:
        await live.send(parts, rows)
