"""The `checkpoint-streams` command: one entry point for operators, CI and newcomers.

Errors meant for people are one line on stderr with a non-zero exit code (1: the work
failed, 2: the command line was wrong); tracebacks are kept for bugs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from .engine.policy import POLICY_DIR, PolicyBook, PolicyError, load_policy, load_policy_dir

REPO_ROOT = Path(__file__).resolve().parent.parent
BROKER_SCRIPT = REPO_ROOT / "deploy" / "broker.sh"

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


def fail(message: str, code: int = 1) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def _policies(directory: Path | None, extra: Iterable[Path] = ()) -> PolicyBook:
    try:
        book = load_policy_dir(directory or POLICY_DIR)
        for path in extra:
            book = book.with_policy(load_policy(path))
        return book
    except PolicyError as exc:
        fail(str(exc))
        raise  # unreachable: fail exits


def _parse_time(value: str | None) -> int | None:
    from .engine.timeutil import parse_ts

    if value is None:
        return None
    try:
        return parse_ts(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time with offset, "
                                 "e.g. 2022-09-01T00:00:00+08:00") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="checkpoint-streams")
def main() -> None:
    """Checkpoint scans in, health-code changes out, in real time.

    \b
    Live:    checkpoint-streams broker start && checkpoint-streams worker
    Offline: checkpoint-streams replay tests/scenarios/z22.jsonl --table
    """


# ---------------------------------------------------------------------------- replay
@main.command(help=REPLAY_HELP)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=str))
@click.option("--until", "until", metavar="TIME",
              help="Pass event time up to TIME at the end, firing due releases.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSONL output here instead of stdout.")
@click.option("--policies", "policy_dir", type=click.Path(file_okay=False, exists=True,
              path_type=Path), help="Directory of policy files (default: the bundled ones).")
@click.option("--policy", "extra_policies", multiple=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="An extra policy file (replaces a bundled one with the same id).")
@click.option("--table", is_flag=True, help="Print a coloured table for people instead of JSONL.")
@click.option("--summary/--no-summary", default=True, show_default=True,
              help="Print the reconciliation (inputs = processed + dead letters) to stderr.")
def replay(file: str, until: str | None, out: Path | None, policy_dir: Path | None,
           extra_policies: tuple[Path, ...], table: bool, summary: bool) -> None:
    from .replay import dump_jsonl, replay_file

    until_ms = _parse_time(until)
    book = _policies(policy_dir, extra_policies)
    try:
        if file == "-":
            run = replay_file(None, until_ms, book, stream=sys.stdin)
        else:
            run = replay_file(file, until_ms, book)
    except FileNotFoundError:
        fail(f"no such file: {file}")
        return
    except IsADirectoryError:
        fail(f"{file} is a directory, not a recording")
        return
    if table:
        _print_table(run.outputs)
    else:
        data = dump_jsonl(run.outputs)
        if out is not None:
            out.write_bytes(data)
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


COLOUR_STYLE = {"red": "bold red", "yellow": "bold yellow", "green": "green"}


def _print_table(outputs: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    grid = Table(title="checkpoint-streams replay", show_lines=False)
    for column in ("event time", "topic", "kind", "person / subject", "code", "rule / reason"):
        grid.add_column(column)
    for record in outputs:
        value = record["value"]
        topic = record["topic"].split(".")[-1]
        if topic == "code-changes":
            change = (f"[{COLOUR_STYLE[value['from']]}]{value['from']}[/] → "
                      f"[{COLOUR_STYLE[value['to']]}]{value['to']}[/]"
                      + (f" ({value['mark']} mark)" if value.get("mark") == "blue" else ""))
            grid.add_row(value["event_time"], topic, value["kind"], value["person"], change,
                         value["rule"])
        elif topic == "alerts":
            grid.add_row(value["event_time"], topic, value["kind"],
                         value.get("person") or value.get("subject", ""), value["severity"],
                         value["detail"]["en"])
        else:
            grid.add_row(value["received_at"], topic, value["reason"],
                         str(value["source"].get("line") or value["source"].get("offset")), "",
                         value["detail"])
    Console(soft_wrap=False).print(grid)


# ---------------------------------------------------------------------------- live
BROKER_OPTION = click.option(
    "--broker", default=lambda: os.environ.get("CHECKPOINT_BROKER", "127.0.0.1:9092"),
    show_default="$CHECKPOINT_BROKER or 127.0.0.1:9092", help="Kafka bootstrap server.")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@BROKER_OPTION
@click.option("--web-port", type=int, help="Port of the health/metrics/views HTTP server.")
@click.option("--store", type=click.Choice(["memory", "rocksdb"]),
              help="Table store (default memory://, $CHECKPOINT_STORE).")
@click.option("--create-topics/--no-create-topics", default=True, show_default=True,
              help="Create the contract's topics first (idempotent).")
@click.option("-l", "--loglevel", default="info", show_default=True)
@click.pass_context
def worker(ctx: click.Context, broker: str, web_port: int | None, store: str | None,
           create_topics: bool, loglevel: str) -> None:
    """Run a live worker: consume the input topics, emit code changes in real time.

    \b
    Every setting comes from the environment (see docs/operations.md); options
    here override it. Several workers with the same CHECKPOINT_APP_ID form one
    consumer group and split the partitions.
    """
    os.environ["CHECKPOINT_BROKER"] = broker
    if web_port is not None:
        os.environ["CHECKPOINT_WEB_PORT"] = str(web_port)
    if store is not None:
        os.environ["CHECKPOINT_STORE"] = f"{store}://"
    if create_topics:
        from .admin import BrokerUnreachable
        from .admin import create_topics as create

        try:
            create(broker)
        except BrokerUnreachable as exc:
            fail(f"{exc} (start one with: checkpoint-streams broker start)")
    from .app import app

    sys.argv = ["checkpoint-streams", "worker", "--loglevel", loglevel,
                "--web-port", os.environ.get("CHECKPOINT_WEB_PORT", "6066"), *ctx.args]
    app.main()


@main.command("topics")
@BROKER_OPTION
def topics_cmd(broker: str) -> None:
    """Create every topic of the contract (partitions and compaction from asyncapi.yaml)."""
    from .admin import BrokerUnreachable, create_topics

    try:
        created = create_topics(broker)
    except BrokerUnreachable as exc:
        fail(str(exc))
        return
    click.echo(f"created {len(created)} topics" + (": " + ", ".join(created) if created else ""))


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@BROKER_OPTION
@click.option("--rebase/--no-rebase", default=False, show_default=True,
              help="Shift the recording's days so its last event is just before now.")
@click.option("--rate", type=float, help="Records per second (default: as fast as possible).")
def produce(file: Path, broker: str, rebase: bool, rate: float | None) -> None:
    """Send a JSONL recording (the replay format) to the live topics, in event-time order."""
    import time as _time

    from tqdm import tqdm

    from .admin import BrokerUnreachable, produce_records
    from .recording import by_event_time, read_jsonl
    from .recording import rebase as shift

    try:
        records = by_event_time(read_jsonl(file))
    except (ValueError, KeyError, TypeError) as exc:
        fail(f"{file}: not a recording of {{topic, key, value}} lines with event times ({exc})")
        return
    if rebase:
        records, days = shift(records, int(_time.time() * 1000))
        click.echo(f"rebased by {days} days", err=True)
    try:
        for _ in tqdm(produce_records(broker, records, rate=rate), total=len(records),
                      unit="rec", disable=None, desc="produce"):
            pass
    except BrokerUnreachable as exc:
        fail(str(exc))


# ---------------------------------------------------------------------------- policy
@main.group()
def policy() -> None:
    """Validate, compare and back-test policy files."""


@policy.command("validate")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
def policy_validate(files: tuple[Path, ...]) -> None:
    """Check policy files against the policy schema and the engine's rules."""
    for path in files:
        try:
            loaded = load_policy(path)
        except PolicyError as exc:
            fail(str(exc))
            return
        click.echo(f"ok: {path}: {loaded.id} v{loaded.version}, {len(loaded.rules)} rules, "
                   f"jurisdiction {loaded.jurisdiction}, lookback {loaded.lookback_days} days")


@policy.command("list")
def policy_list() -> None:
    """List the bundled policies."""
    from .engine.timeutil import format_ts

    for item in sorted(_policies(None).policies, key=lambda p: (p.jurisdiction, p.valid_from)):
        click.echo(f"{item.id} v{item.version}  jurisdiction {item.jurisdiction}  "
                   f"from {format_ts(item.valid_from)}  lookback {item.lookback_days} d  "
                   f"{len(item.rules)} rules")


# ---------------------------------------------------------------------------- broker
@main.group()
def broker() -> None:
    """Start and stop the local single-node Kafka broker (deploy/broker.sh)."""


def _broker(action: str) -> None:
    if not BROKER_SCRIPT.exists():
        fail(f"{BROKER_SCRIPT} not found (run from a source checkout)")
    code = subprocess.call(["bash", str(BROKER_SCRIPT), action], env=os.environ.copy())
    if code:
        sys.exit(code)


@broker.command("start")
def broker_start() -> None:
    """Fetch Kafka (first run), format KRaft storage, start on 127.0.0.1."""
    _broker("start")


@broker.command("stop")
def broker_stop() -> None:
    """Stop the broker started by `broker start`."""
    _broker("stop")


@broker.command("status")
def broker_status() -> None:
    """Exit 0 if the local broker runs."""
    _broker("status")


if __name__ == "__main__":  # pragma: no cover
    main()
