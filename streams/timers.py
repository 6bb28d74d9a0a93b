"""The worker's timers: releases and other due times, the stream clock's marks, the daily
reports, gauges. Each hands its work to the live shell (`streams.live`)."""

from __future__ import annotations

import logging

import orjson

from . import metrics
from . import topics as T
from .app import app, live, report_counts, settings
from .engine.timeutil import format_date, local_day
from .partitioning import key_partition
from .pipeline import Output
from .reports import due_days, report_areas, report_from_counts, sum_parts

log = logging.getLogger("checkpoint_streams")


@app.timer(interval=settings.timer_interval)
async def release_timer() -> None:
    """Hand a tick to the partition of every person whose due time came: releases, missed
    tests, closing test windows are decided and committed like any input."""
    if not live.feed.ready.is_set() or live.recovering:
        return
    ticks = live.due_ticks()
    if ticks:
        metrics.REEVALUATIONS  # noqa: B018 - ticks are counted as inputs of the timer stream
        await live.send(ticks)
    metrics.PENDING_RELEASES.set(len(live.due))
    metrics.VISITOR_INDEX.set(len(live.core.index))
    metrics.RELEASE_TIMER_LAST_RUN.set_to_current_time()


if settings.clock == "stream":

    @app.timer(interval=0.25)
    async def stream_marks() -> None:
        """Every partition's mark to every other, again: a partition's new owner waits for
        them (streams.runtime.alignment)."""
        if live.feed.ready.is_set():
            await live.refresh_marks()


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


@app.timer(interval=settings.report_interval)
async def daily_reports() -> None:
    """Send each partition's changed counts to the report owners, then file every report
    that is due (of the areas and days whose key this worker owns).

    The report of an area and day is due at `CHECKPOINT_REPORT_TIME` the next day; the days
    that fell due at the previous tick are filed now, so that the parts every worker sent
    since have arrived. A part that arrives later files the report again, corrected."""
    if not live.feed.ready.is_set():
        return
    parts = live.report_parts()
    if parts:
        await live.send(parts)
    now = live.clock()
    if now == 0:
        return  # stream clock before the first event: no day has ended yet
    to_file, live.report_queue = live.report_queue, due_days(now, live.filed_through,
                                                              settings.report_time)
    if live.report_queue:
        live.filed_through = live.report_queue[-1]
    mine = {tp.partition for tp in app.assignor.assigned_actives()
            if tp.topic == settings.topic(T.REPORT_PARTS)}
    reports = []
    for day in to_file:
        date = format_date(day)
        areas = set(report_areas(live.policies, settings.report_areas))
        areas.update(key.decode().split(":", 1)[0] for key in list(report_counts.keys())
                     if key.decode().endswith(":" + date))
        for area in sorted(areas):
            key = f"{area}:{date}"
            if key_partition(key.encode(), settings.partitions) not in mine:
                continue
            raw = report_counts.get(key.encode())
            counts = sum_parts(orjson.loads(raw)["parts"].values()) if raw else None
            reports.append(Output(T.REPORTS, key, report_from_counts(key, counts, live.clock())))
        live.prune_counts(day - 8)
    if reports:
        await live.send(reports)
