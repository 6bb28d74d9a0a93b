"""`replay`: a recording through the pipeline core, offline."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import POLICIES_OPTION, _parse_time, _policies, fail
from .group import main
from .render import _print_table

REPLAY_HELP = """Replay a recording through the policy engine, offline.

\b
FILE is JSONL (use - for stdin), one Kafka record a line, exactly what a
producer would send:
  {"topic": "checkpoint.scans.station", "key": "<person>", "value": {...}}
Topics: checkpoint.scans.station, checkpoint.scans.highway,
checkpoint.risk-areas, checkpoint.pcr-results, checkpoint.contact-notices,
checkpoint.operator-commands (message shapes: schemas/*.schema.json).

\b
Records run in event-time order with in-memory state. Releases fire as event
time passes, and up to --until at the end (e.g. --until 2022-09-01T00:00:00+08:00
to see every release of a scenario). Output is JSONL in the same shape, on the
topics checkpoint.code-changes, checkpoint.alerts and checkpoint.dead-letters.
Bad lines become dead letters with a reason; the run never stops on input.
The same file always gives byte-identical output.

\b
Example:
  checkpoint-streams replay tests/scenarios/z22.jsonl --table
"""



@main.command(help=REPLAY_HELP)
@click.argument("file", type=click.Path(dir_okay=True, allow_dash=True, path_type=str))
@click.option("--until", "until", metavar="TIME",
              help="Pass event time up to TIME at the end, firing due releases.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSONL output here instead of stdout.")
@POLICIES_OPTION
@click.option("--policy", "extra_policies", multiple=True, type=click.Path(path_type=Path),
              help="An extra policy file (replaces a bundled one with the same id).")
@click.option("--table", is_flag=True, help="Print a coloured table for people instead of JSONL.")
@click.option("--summary/--no-summary", default=True, show_default=True,
              help="Print the reconciliation (inputs = processed + dead letters) to stderr.")
def replay(file: str, until: str | None, out: Path | None, policy_dir: Path | None,
           extra_policies: tuple[Path, ...], table: bool, summary: bool) -> None:
    from ..replay import dump_jsonl, replay_file

    until_ms = _parse_time(until)
    book = _policies(policy_dir, extra_policies)
    try:
        if file == "-":
            run = replay_file(None, until_ms, book, stream=sys.stdin)
        else:
            run = replay_file(file, until_ms, book)
    except FileNotFoundError:
        fail(f"no such file: {file}")
    except IsADirectoryError:
        fail(f"{file} is a directory, not a recording")
    if table:
        _print_table(run.outputs)
    else:
        data = dump_jsonl(run.outputs)
        if out is not None:
            try:
                out.write_bytes(data)
            except OSError as exc:
                fail(f"cannot write {out}: {exc.strerror}")
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
    if summary:
        tally = run.tally.to_json()
        click.echo(
            f"replay: {tally['inputs']} inputs = {tally['processed']} processed + "
            f"{tally['dead_letters']} dead letters ({'reconciled' if tally['reconciles'] else 'MISMATCH'}); "
            + ", ".join(f"{n} {t.split('.')[-1]}" for t, n in tally["outputs"].items()),
            err=True,
        )
        idle = [f"{stream} {status} {count}" for stream, counts in tally["by_stream"].items()
                for status, count in counts.items() if status in ("no_policy", "unmatched")]
        if idle:  # inputs that changed nothing, and why: never folded into "processed"
            click.echo("replay: decided nothing: " + ", ".join(idle), err=True)

