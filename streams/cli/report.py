"""`report`: daily and zero reports of a recording."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import orjson

from .common import (
    POLICIES_OPTION,
    _area_option,
    _day_option,
    _policies,
    _progress,
    _recording,
    _time_option,
    note,
)
from .group import main
from .render import _print_reports


@main.command()
@click.argument("recording")
@click.option("--day", callback=_day_option, metavar="DATE",
              help="The local day to report, e.g. 2022-08-19 [default: every day of the recording].")
@click.option("--area", "within", callback=_area_option, metavar="CODE",
              help="Only areas inside CODE (a province, city or county), e.g. 1407.")
@click.option("--areas", "configured", metavar="CODES",
              default=lambda: os.environ.get("CHECKPOINT_REPORT_AREAS", ""),
              show_default="$CHECKPOINT_REPORT_AREAS, else every county of the policies' jurisdictions",
              help="Areas that file a report every day, zeros included (comma-separated; "
                   "a province or city stands for its counties).")
@click.option("--until", metavar="TIME", callback=_time_option,
              help="Pass event time up to TIME [default: the end of the last day reported].")
@click.option("--report-time", default=lambda: os.environ.get("CHECKPOINT_REPORT_TIME", "00:05"),
              show_default="$CHECKPOINT_REPORT_TIME or 00:05", metavar="HH:MM",
              help="Local time on the next day that stamps generated_at.")
@POLICIES_OPTION
@click.option("--zeros", is_flag=True, help="List zero reports in the table too.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the report messages as JSON Lines (schemas/report.schema.json), zeros included.")
def report(recording: str, day: int | None, within: str | None, configured: str,
           until: int | None, report_time: str, policy_dir: Path | None, zeros: bool,
           as_json: bool) -> None:
    """Daily and zero reports (日报告 / 零报告) for past days of a recording.

    \b
    One report per area (the county of the first landing point) and local day:
    arrivals by checkpoint kind, codes assigned and released by colour,
    code changes by rule, alerts by kind. Every configured area reports, with
    zeros when nothing happened; how events are placed in areas: docs/operations.md.
    \b
    Examples:
      checkpoint-streams report tests/scenarios/pingyao.jsonl --day 2022-08-19 --area 1407
      checkpoint-streams report tests/scenarios/z22.jsonl --json > reports.jsonl
    """
    from ..engine.timeutil import day_start, format_date, local_day
    from ..reports import parse_report_time, report_areas, report_instant, tally_replay

    try:
        parse_report_time(report_time)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--report-time'") from None
    book = _policies(policy_dir)
    records, dead = _recording(recording)
    if configured:
        bad = [c for c in configured.split(",") if c.strip() and not c.strip().isdigit()]
        if bad:
            raise click.BadParameter(f"{bad[0]!r} is not an area code", param_hint="'--areas'")
    reporting = report_areas(book, configured or None)
    times = [r.event_time for r in records]
    if day is not None:
        days = [day]
    elif times:
        days = list(range(local_day(min(times)), local_day(max(times)) + 1))
    else:
        days = []
    if until is None and days:
        until = max(day_start(max(days) + 1) - 1, max(times, default=0))
    with _progress(len(records), "report") as advance:
        tally, _ = tally_replay(records, book, dead_letters=dead, until=until, progress=advance)
    if times and day is not None and not (local_day(min(times)) <= day <= local_day(max(times))):
        note(f"note: {format_date(day)} is outside the recording "
             f"({format_date(local_day(min(times)))} to {format_date(local_day(max(times)))}): "
             "zero reports")
    reports = [r for d in days for r in tally.reports(d, reporting, report_instant(d, report_time), within)]
    if tally.unattributed:
        note(f"note: {tally.unattributed} events could not be placed in an area")
    if as_json:
        sys.stdout.buffer.write(b"".join(orjson.dumps(r) + b"\n" for r in reports))
        sys.stdout.flush()
        return
    _print_reports(reports, zeros, within)

