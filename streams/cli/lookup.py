"""Look-ups: a person's `status` and the `areas` register, from a live worker or a
recording."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import click

from ..engine.timeutil import format_ts
from ..status import person_status
from .common import (
    EXIT_NOT_FOUND,
    JSON_OPTION,
    POLICIES_OPTION,
    RECORDING_OPTION,
    UNTIL_OPTION,
    WORKER_OPTION,
    _get,
    _one_source,
    _policies,
    _replay_state,
    _time_option,
    _worker_url,
    fail,
)
from .group import main
from .render import LEVEL_STYLE, _console, _print_json, _print_status, _styled


@main.command()
@click.argument("person")
@WORKER_OPTION
@RECORDING_OPTION
@UNTIL_OPTION
@POLICIES_OPTION
@JSON_OPTION
def status(person: str, worker_url: str | None, recording: str | None, until: int | None,
           policy_dir: Path | None, as_json: bool) -> None:
    """A person's current code, active controls with due times, test schedule and
    history with causes.

    \b
    From a live worker (any worker: it forwards to the one that owns PERSON):
      checkpoint-streams status z22-passenger-001 --worker http://127.0.0.1:6066
    From a recording, as of its last event (or --until):
      checkpoint-streams status ty-medium-traveller --recording tests/scenarios/taiyuan-0820.jsonl
    Exit code 3 when the person is not known.
    """
    _one_source(worker_url, recording, until)
    if recording:
        run = _replay_state(recording, until, _policies(policy_dir))
        state = run.states.get(person)
        if state is None and person in run.deleted:
            fail(f"person {person}'s state was deleted at {format_ts(run.deleted[person])}: "
                 "nothing in it could matter any more (docs/privacy.md)", EXIT_NOT_FOUND)
        if state is None:
            fail(f"no person {person} in {recording}", EXIT_NOT_FOUND)
        shown, source = person_status(state, run.clock), f"replay of {recording}"
    else:
        base = _worker_url(worker_url)
        code, body = _get(base, "/persons/" + urllib.parse.quote(person, safe=""))
        if code == 404:
            fail(f"no person {person} on the workers at {base}", EXIT_NOT_FOUND)
        if code != 200 or not isinstance(body, dict) or "status" not in body:
            fail(f"worker at {base} answered {code} for /persons/{person}")
        shown, source = body["status"], base
    if as_json:
        _print_json({**shown, "source": source})
    else:
        _print_status(shown, source)


@main.command()
@WORKER_OPTION
@RECORDING_OPTION
@click.option("--at", "at", metavar="TIME", callback=_time_option,
              help="With --recording: the register as of TIME [default: the last event].")
@POLICIES_OPTION
@click.option("--level", "levels", multiple=True,
              type=click.Choice(["high", "medium", "low", "cases"]),
              help="Only areas at this level (repeatable).")
@JSON_OPTION
def areas(worker_url: str | None, recording: str | None, at: int | None,
          policy_dir: Path | None, levels: tuple[str, ...], as_json: bool) -> None:
    """The risk-area register: every designated area and its level.

    \b
    From a live worker (now):  checkpoint-streams areas --worker http://127.0.0.1:6066
    From a recording:          checkpoint-streams areas --recording tests/scenarios/z22.jsonl
    As of an instant in it:    ... --at 2022-08-18T00:00:00+08:00
    """
    from ..engine.timeutil import format_ts

    if worker_url and recording:
        raise click.UsageError("give --worker or --recording, not both")
    if at is not None and not recording:
        raise click.UsageError("--at needs --recording (a live worker answers for now)")
    if recording:
        run = _replay_state(recording, None, _policies(policy_dir))
        moment = run.clock if at is None else at
        rows = run.register.snapshot(moment)
        at_text, source = format_ts(moment), f"replay of {recording}"
    else:
        base = _worker_url(worker_url)
        code, body = _get(base, "/areas")
        if code != 200 or not isinstance(body, dict):
            fail(f"worker at {base} answered {code} for /areas")
        rows, at_text, source = body.get("areas", []), body.get("at", ""), base
    if levels:
        rows = [r for r in rows if r["level"] in levels]
    from .. import areas as gbt

    rows = [{**r, "name": gbt.full_name(r["area"]) if gbt.is_known(r["area"]) else None} for r in rows]
    if as_json:
        _print_json({"at": at_text, "source": source, "areas": rows})
        return
    from rich.table import Table

    grid = Table(title=f"risk-area register at {at_text} ({_styled(source, None)})", title_justify="left")
    for column in ("area", "name", "level", "update"):
        grid.add_column(column)
    for row in rows:
        grid.add_row(row["area"], row["name"] or "", _styled(row["level"], LEVEL_STYLE.get(row["level"])),
                     row["update"])
    console = _console()
    console.print(grid)
    console.print(f"{len(rows)} designated areas")

