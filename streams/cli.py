"""The `checkpoint-streams` command: one entry point for operators, CI and newcomers.

Shell only: every decision is made by the engine (`streams.engine`), the policy tools
(`streams.policy_tools`) and the report aggregator (`streams.reports`); this module reads
files, talks to Kafka and to the workers' web views, and prints.

Conventions every subcommand keeps:

- people get coloured tables (plain text when piped), machines get `--json`;
- long work shows a progress bar on stderr when stderr is a terminal;
- errors meant for people are one line on stderr, `error: ...`; tracebacks are for bugs;
- exit codes (also in `--help` and docs/operations.md):
  0 done, 1 the work failed (bad or missing file, invalid policy, no broker or worker
  answering), 2 the command line was wrong, 3 not found (`status` of an unknown
  person), 4 differences found (`policy diff` / `policy backtest` with `--exit-code`),
  130 interrupted.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import click
import orjson

from .engine.policy import POLICY_DIR, Policy, PolicyBook, PolicyError, load_policy, load_policy_dir

REPO_ROOT = Path(__file__).resolve().parent.parent
BROKER_SCRIPT = REPO_ROOT / "deploy" / "broker.sh"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_DIFFERENT, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_CODES_HELP = """\b
Exit codes: 0 done; 1 failed (bad or missing file, invalid policy, no broker or
worker answering); 2 wrong command line; 3 not found; 4 differences found
(--exit-code); 130 interrupted."""
#: below this many records a progress bar would only flicker
PROGRESS_MIN = 2_000

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


# ------------------------------------------------------------------------ errors
def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """One line on stderr and exit: the way every expected failure ends."""
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def note(message: str) -> None:
    click.secho(message, fg="bright_black", err=True)


class Main(click.Group):
    """The top-level group: commands listed in the order they are added, `load` from
    `streams.load` when that module is present, and one-line errors for everything a
    user can get wrong (click's usage errors included)."""

    LAZY: ClassVar[dict[str, tuple[str, str]]] = {"load": ("streams.load", "command")}

    @staticmethod
    def _available(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # e.g. a module object without a spec
            return sys.modules.get(module) is not None

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = list(self.commands)
        for name, (module, _) in self.LAZY.items():
            if name not in names and self._available(module):
                after = names.index("produce") + 1 if "produce" in names else len(names)
                names.insert(after, name)
        return names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in self.LAZY:
            return found
        module_name, attribute = self.LAZY[cmd_name]
        if not self._available(module_name):
            return None
        try:
            command = getattr(importlib.import_module(module_name), attribute)
        except Exception as exc:  # a broken optional module must not break the whole CLI
            reason = f"{type(exc).__name__}: {exc}"

            @click.command(cmd_name, help=f"(unavailable: {reason})")
            def unavailable() -> None:
                fail(f"{cmd_name} is unavailable ({reason})")

            return unavailable
        return command if isinstance(command, click.Command) else None

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        try:
            code = super().main(args, prog_name or "checkpoint-streams", complete_var,
                                standalone_mode=False, windows_expand_args=windows_expand_args, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "checkpoint-streams"
            message = " ".join(exc.format_message().split())
            fail(f"{message} (see: {where} --help)", EXIT_USAGE)
        except click.ClickException as exc:
            fail(" ".join(exc.format_message().split()), exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:  # `... | head`: the reader is gone, nothing left to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_OK)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else EXIT_OK)


# ------------------------------------------------------------------------ inputs
def _input_file(text: str | Path, what: str = "file") -> Path:
    path = Path(text)
    if not path.exists():
        fail(f"no such {what}: {text}")
    if path.is_dir():
        fail(f"{text} is a directory, not a {what}")
    return path


def _policies(directory: Path | None, extra: Iterable[Path] = ()) -> PolicyBook:
    if directory is not None and not Path(directory).is_dir():
        fail(f"no such policy directory: {directory}")
    try:
        book = load_policy_dir(directory or POLICY_DIR)
        for path in extra:
            book = book.with_policy(load_policy(_input_file(path, "policy file")))
        return book
    except PolicyError as exc:
        fail(str(exc))


def _policy_file(text: str | Path) -> Policy:
    try:
        return load_policy(_input_file(text, "policy file"))
    except PolicyError as exc:
        fail(str(exc))


def _parse_time(value: str | None) -> int | None:
    from .engine.timeutil import parse_ts

    if value is None:
        return None
    try:
        return parse_ts(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time with offset, "
                                 "e.g. 2022-09-01T00:00:00+08:00") from None


def _time_option(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    return _parse_time(value)


def _day_option(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    from .engine.timeutil import parse_date

    if value is None:
        return None
    try:
        return parse_date(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date, e.g. 2022-08-19") from None


def _area_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if not (value.isdigit() and len(value) in (2, 4, 6, 9, 12)):
        raise click.BadParameter(f"{value!r} is not a GB/T 2260 area code, e.g. 1407 or 140728")
    return value


def _recording(path_text: str) -> tuple[list[Any], list[dict[str, Any]]]:
    """Records (event-time order) and dead letters of a JSONL recording."""
    from .replay import read_recording

    path = _input_file(path_text, "recording")
    with open(path, "rb") as handle:
        return read_recording(handle)


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for long work; nothing when piped or short."""
    from rich.console import Console

    err = Console(stderr=True)
    if not err.is_terminal or total < PROGRESS_MIN:
        yield lambda advance: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda advance: bar.advance(task, advance)


def _replay_state(path_text: str, until: int | None, book: PolicyBook) -> Any:
    """A finished replay of a recording (for status and areas), with a progress bar."""
    from .replay import Replay

    records, _ = _recording(path_text)
    run = Replay(book)
    with _progress(len(records), "replay") as advance:
        for record in records:
            run.feed(record)
            advance(1)
    if until is not None:
        run.advance_to(until)
    return run


# ----------------------------------------------------------------------- outputs
def _console() -> Any:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:  # piped: no colour, and wide enough not to fold tables
        console = Console(highlight=False, soft_wrap=True, width=max(console.width, 160))
    return console


def _print_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


COLOUR_STYLE = {"red": "bold red", "yellow": "bold yellow", "green": "green"}
LEVEL_STYLE = {"high": "bold red", "medium": "bold yellow", "cases": "magenta", "low": "green"}


def _styled(text: str, style: str | None) -> str:
    from rich.markup import escape

    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def _short(timestamp: str | None) -> str:
    """`2022-08-21T13:00:00+08:00` -> `2022-08-21 13:00` (tables are in local time)."""
    if not timestamp:
        return "—"
    return timestamp[:16].replace("T", " ") if timestamp.endswith("+08:00") else timestamp


def _code(colour: str, mark: str | None = None) -> str:
    shown = _styled(colour, COLOUR_STYLE.get(colour))
    if mark and mark != colour:
        shown += f" ([blue]{mark}[/] mark)" if mark == "blue" else f" ({mark} mark)"
    return shown


def _area_label(code: str) -> str:
    from . import areas

    name = areas.full_name(code) if areas.is_known(code) else None
    return f"{code} {name}" if name else code


JSON_OPTION = click.option("--json", "as_json", is_flag=True,
                           help="Print JSON for machines instead of a table.")
WORKER_OPTION = click.option(
    "--worker", "worker_url", metavar="URL",
    help="A live worker's web server [default: $CHECKPOINT_WORKER or http://127.0.0.1:6066].")
RECORDING_OPTION = click.option(
    "--recording", "recording", metavar="FILE",
    help="Answer from a replay of this recording instead of a live worker.")
UNTIL_OPTION = click.option("--until", metavar="TIME", callback=_time_option,
                            help="With --recording: pass event time up to TIME first.")
POLICIES_OPTION = click.option(
    "--policies", "policy_dir", type=click.Path(path_type=Path),
    help="Directory of policy files [default: the bundled streams/policies].")


# -------------------------------------------------------------------- the group
@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_CODES_HELP)
@click.version_option(package_name="checkpoint-streams")
def main() -> None:
    """Checkpoint scans in, health-code changes out, in real time.

    \b
    First steps (README.md):
      make run      live: broker, topics, a worker, a scenario fed; watch codes change
      make replay   the same scenario offline:
                    checkpoint-streams replay tests/scenarios/z22.jsonl --table
    \b
    Live:      broker start|stop|status, topics, worker, produce FILE, load
    Look up:   status PERSON, areas                (--worker URL or --recording FILE)
    Policies:  policy validate|show|list|diff|backtest|publish
    Reports:   report RECORDING --day 2022-08-19 [--area 1407]

    Every command has --help with examples; docs/operations.md is the reference.
    """


# ------------------------------------------------------------------------ replay
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


def _print_table(outputs: list[dict[str, Any]]) -> None:
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
    _console().print(grid)


# -------------------------------------------------------------------------- live
BROKER_OPTION = click.option(
    "--broker", default=lambda: os.environ.get("CHECKPOINT_BROKER", "127.0.0.1:9092"),
    show_default="$CHECKPOINT_BROKER or 127.0.0.1:9092", help="Kafka bootstrap server.")


def _check_broker(bootstrap: str, timeout: float = 3.0) -> None:
    """Fail in seconds, not after the Kafka client's long timeouts, when nothing listens."""
    reasons = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout):
                return
        except ValueError:
            fail(f"--broker {server!r} is not host:port", EXIT_USAGE)
        except OSError as exc:
            reasons.append(exc.strerror or str(exc))
    fail(f"no Kafka broker answers at {bootstrap} ({'; '.join(dict.fromkeys(reasons))}); "
         "start one with: checkpoint-streams broker start")


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
    consumer group and split the partitions. The worker serves /health, /ready,
    /metrics, /areas and /persons/{person} on --web-port (what `status` and
    `areas` read).
    """
    os.environ["CHECKPOINT_BROKER"] = broker
    from .codec import original_mode

    try:
        original_mode()  # a dead-letter setting that cannot work fails now, not at the first one
    except ValueError as exc:
        fail(str(exc))
    if web_port is not None:
        os.environ["CHECKPOINT_WEB_PORT"] = str(web_port)
    if store is not None:
        os.environ["CHECKPOINT_STORE"] = f"{store}://"
    if create_topics:
        from .admin import BrokerUnreachable
        from .admin import create_topics as create

        _check_broker(broker)
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

    _check_broker(broker)
    try:
        created = create_topics(broker)
    except BrokerUnreachable as exc:
        fail(str(exc))
    click.echo(f"created {len(created)} topics" + (": " + ", ".join(created) if created else ""))


@main.command()
@click.argument("file")
@BROKER_OPTION
@click.option("--rebase/--no-rebase", default=False, show_default=True,
              help="Shift the recording's days so its last event is just before now.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True),
              help="Records per second (default: as fast as possible).")
def produce(file: str, broker: str, rebase: bool, rate: float | None) -> None:
    """Send a JSONL recording (the replay format) to the live topics, in event-time order.

    \b
    Example (a worker running, see `worker`):
      checkpoint-streams produce tests/scenarios/z22.jsonl --rebase
    """
    import time as _time

    from tqdm import tqdm

    from .admin import BrokerUnreachable, produce_records
    from .recording import by_event_time, read_jsonl
    from .recording import rebase as shift

    path = _input_file(file, "recording")
    try:
        records = by_event_time(read_jsonl(path))
    except (ValueError, KeyError, TypeError) as exc:
        fail(f"{file}: not a recording of {{topic, key, value}} lines with event times ({exc})")
    if rebase and records:
        records, days = shift(records, int(_time.time() * 1000))
        note(f"rebased by {days} days")
    _check_broker(broker)
    try:
        for _ in tqdm(produce_records(broker, records, rate=rate), total=len(records),
                      unit="rec", disable=None, desc="produce"):
            pass
    except BrokerUnreachable as exc:
        fail(str(exc))


# -------------------------------------------------------------------- look-ups
def _worker_url(url: str | None) -> str:
    chosen = url or os.environ.get("CHECKPOINT_WORKER") or "http://127.0.0.1:6066"
    if "://" not in chosen:
        chosen = "http://" + chosen
    return chosen.rstrip("/")


def _get(base: str, path: str, timeout: float = 10.0) -> tuple[int, Any]:
    """GET a worker's JSON view; one-line failure when nobody answers."""
    try:
        with urllib.request.urlopen(base + path, timeout=timeout) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            fail(f"worker at {base} answered {err.code} {err.reason} for {path}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        reason = getattr(reason, "strerror", None) or reason
        fail(f"no worker answers at {base} ({reason}); start one with: checkpoint-streams worker")
    except orjson.JSONDecodeError:
        fail(f"{base}{path} did not answer JSON: is that a checkpoint-streams worker?")


def _one_source(worker_url: str | None, recording: str | None, until: int | None) -> None:
    if worker_url and recording:
        raise click.UsageError("give --worker or --recording, not both")
    if until is not None and not recording:
        raise click.UsageError("--until needs --recording (a live worker is always at now)")


def person_status(state: Mapping[str, Any], as_of: int) -> dict[str, Any]:
    """A person's state (PersonState JSON, as the web view serves it) for people and scripts:
    current code, active controls with due times, test schedule, history with causes."""
    from .engine.timeutil import day_start, format_date, format_ts, local_day
    from .policy_tools import measure_words

    today = local_day(as_of)
    controls, tests = [], []
    for control in state.get("controls", ()):
        start_day = local_day(control["started"])
        tests_needed = control["measure"].get("tests") or {}
        controls.append({
            "control": control["id"], "policy": control["policy"],
            "version": control["policy_version"], "rule": control["rule"],
            "colour": control["colour"], "mark": control.get("mark"),
            "measure": measure_words(control["measure"]),
            "started": format_ts(control["started"]),
            "due": format_ts(control["due"]) if control.get("due") is not None else None,
            "release": control["release"], "hold": control.get("hold"),
            "negatives": (f"{len(control.get('negatives', ()))} of {tests_needed.get('count')}"
                          if control["release"] == "tests" else None),
            "caused_by": control.get("caused_by", []),
        })
        for day in control.get("pcr_days", ()):
            date = start_day + day
            if day in control.get("satisfied", ()):
                status = "done"
            elif day in control.get("missed", ()) or date < today:
                status = "missed"
            elif date == today:
                status = "due today"
            else:
                status = "upcoming"
            tests.append({"control": control["id"], "rule": control["rule"], "day": day,
                          "date": format_date(date), "status": status,
                          "from": format_ts(day_start(date))})
    tests.sort(key=lambda t: (t["date"], t["rule"]))
    arrival = state.get("arrival")
    return {
        "person": state["person"],
        "code": state.get("colour", "green"),
        "mark": state.get("mark"),
        "as_of": format_ts(as_of),
        "positive": state.get("positive"),
        "arrival": None if not arrival else {
            "scan": arrival.get("scan"), "checkpoint": arrival.get("checkpoint"),
            "kind": arrival.get("kind"), "area": arrival.get("area"),
            "at": format_ts(arrival["at"]) if arrival.get("at") is not None else None},
        "controls": controls,
        "tests": tests,
        "results": [{"id": r["id"], "collected": format_ts(r["collected"]), "result": r["result"],
                     "tube": r.get("tube")} for r in state.get("results", ())],
        "history": [{"at": h["at"], "kind": h["kind"], "from": h["from"], "to": h["to"],
                     "rule": h["rule"], "caused_by": h.get("caused_by", []), "id": h["id"]}
                    for h in state.get("history", ())],
    }


def _print_status(status: Mapping[str, Any], source: str) -> None:
    from rich.table import Table

    console = _console()
    console.print(f"[bold]{status['person']}[/]  {_code(status['code'], status['mark'])}"
                  f"   as of {status['as_of']} ({_styled(source, None)})")
    arrival = status.get("arrival")
    if arrival:
        console.print(f"last arrival: {arrival['checkpoint']} ({arrival['kind']}, "
                      f"{_area_label(arrival['area'])}) at {arrival['at']}, scan {arrival['scan']}")
    if status.get("positive"):
        console.print(f"[bold red]unresolved positive result[/] {status['positive']}")
    if status["controls"]:
        grid = Table(title="active controls", title_justify="left")
        for column in ("rule", "policy", "code", "measure", "started", "due", "release", "caused by"):
            grid.add_column(column)
        for c in status["controls"]:
            release = c["release"] + (f", held: {c['hold']}" if c["hold"] else "") + (
                f", negatives {c['negatives']}" if c["negatives"] else "")
            grid.add_row(c["rule"], f"{c['policy']} v{c['version']}", _code(c["colour"], c["mark"]),
                         c["measure"], _short(c["started"]), _short(c["due"]), release,
                         ", ".join(c["caused_by"]))
        console.print(grid)
    else:
        console.print("no active controls")
    if status["tests"]:
        grid = Table(title="test schedule", title_justify="left")
        for column in ("date", "day", "rule", "status"):
            grid.add_column(column)
        style = {"done": "green", "missed": "bold red", "due today": "bold yellow", "upcoming": ""}
        for t in status["tests"]:
            grid.add_row(t["date"], str(t["day"]), t["rule"], _styled(t["status"], style[t["status"]]))
        console.print(grid)
    if status["history"]:
        grid = Table(title="history", title_justify="left")
        for column in ("at", "kind", "code", "rule", "caused by"):
            grid.add_column(column)
        for h in status["history"]:
            grid.add_row(_short(h["at"]), h["kind"], f"{_code(h['from'])} → {_code(h['to'])}", h["rule"],
                         ", ".join(h["caused_by"]))
        console.print(grid)


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
        if state is None:
            fail(f"no person {person} in {recording}", EXIT_NOT_FOUND)
        found, as_of, source = state.to_json(), run.clock, f"replay of {recording}"
    else:
        base = _worker_url(worker_url)
        code, body = _get(base, "/persons/" + urllib.parse.quote(person, safe=""))
        if code == 404:
            fail(f"no person {person} on the workers at {base}", EXIT_NOT_FOUND)
        if code != 200 or not isinstance(body, dict):
            fail(f"worker at {base} answered {code} for /persons/{person}")
        found, as_of, source = body, int(time.time() * 1000), base
    shown = person_status(found, as_of)
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
    from .engine.timeutil import format_ts

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
    from . import areas as gbt

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


# ------------------------------------------------------------------------ report
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
    from .engine.timeutil import day_start, format_date, local_day
    from .reports import parse_report_time, report_areas, report_instant, tally_replay

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


def _print_reports(reports: list[dict[str, Any]], zeros: bool, within: str | None) -> None:
    from rich.table import Table

    from .reports import AreaDay

    console = _console()
    shown = [r for r in reports if zeros or not AreaDay.from_json(r).is_zero()]
    grid = Table(title="daily reports" + (f" in {_area_label(within)}" if within else ""),
                 title_justify="left")
    for column in ("date", "area", "station", "highway", "assigned r/y/g", "released r/y/g",
                   "by rule", "alerts"):
        grid.add_column(column, justify="right" if column in ("station", "highway") else "left")

    def colours(counts: Mapping[str, int]) -> str:
        return (f"[bold red]{counts['red']}[/]/[bold yellow]{counts['yellow']}[/]/"
                f"[green]{counts['green']}[/]")

    for r in shown:
        grid.add_row(r["date"], _area_label(r["area"]), str(r["arrivals"]["station"]),
                     str(r["arrivals"]["highway"]), colours(r["assigned"]), colours(r["released"]),
                     ", ".join(f"{k} {v}" for k, v in r["by_rule"].items()),
                     ", ".join(f"{k} {v}" for k, v in r["alerts"].items()))
    console.print(grid)
    zero = sum(1 for r in reports if AreaDay.from_json(r).is_zero())
    days = len({r["date"] for r in reports})
    console.print(f"{len(reports)} reports over {days} day{'s' if days != 1 else ''}: "
                  f"{len(reports) - zero} with activity, {zero} zero reports"
                  + ("" if zeros or not zero else " (list them with --zeros; all of them with --json)"))


# ------------------------------------------------------------------------ policy
@main.group()
def policy() -> None:
    """Validate, read, compare, back-test and publish policies.

    \b
    The life of a new policy (docs/policies.md):
      checkpoint-streams policy validate new.yaml
      checkpoint-streams policy diff streams/policies/taiyuan-2022-08-20.yaml new.yaml
      checkpoint-streams policy backtest new.yaml tests/scenarios/taiyuan-0820.jsonl
      checkpoint-streams policy publish new.yaml      # workers switch at its valid_from
    """


@policy.command("validate")
@click.argument("files", nargs=-1, required=True)
@JSON_OPTION
def policy_validate(files: tuple[str, ...], as_json: bool) -> None:
    """Check policy files against the policy schema and the engine's rules.

    Every file is checked; the exit code is 1 when any is invalid.
    """
    results = []
    for name in files:
        try:
            path = Path(name)
            if not path.is_file():
                raise PolicyError(f"no such policy file: {name}" if not path.exists()
                                  else f"{name} is a directory, not a policy file")
            loaded = load_policy(path)
        except PolicyError as exc:
            results.append({"file": name, "ok": False, "error": str(exc)})
            if not as_json:
                click.secho(f"error: {exc}", fg="red", err=True)
            continue
        results.append({"file": name, "ok": True, "policy": loaded.ref(), "rules": len(loaded.rules),
                        "jurisdiction": loaded.jurisdiction, "lookback_days": loaded.lookback_days})
        if not as_json:
            click.echo(f"ok: {name}: {loaded.id} v{loaded.version}, {len(loaded.rules)} rules, "
                       f"jurisdiction {loaded.jurisdiction}, lookback {loaded.lookback_days} days")
    if as_json:
        _print_json(results)
    if not all(r["ok"] for r in results):
        sys.exit(EXIT_FAILED)


@policy.command("list")
@POLICIES_OPTION
@click.option("--at", "at", metavar="TIME", callback=_time_option,
              help="Mark the policies in force at TIME [default: now].")
@click.option("--published", is_flag=True,
              help="List what was published to the checkpoint.policies topic instead.")
@BROKER_OPTION
@JSON_OPTION
def policy_list(policy_dir: Path | None, at: int | None, published: bool, broker: str,
                as_json: bool) -> None:
    """List policies: the bundled ones (or --policies DIR), or those published (--published)."""
    from .engine.timeutil import format_ts

    now = at if at is not None else int(time.time() * 1000)
    if published:
        _list_published(broker, now, as_json)
        return
    book = _policies(policy_dir)
    rows = []
    for item in sorted(book.policies, key=lambda p: (p.jurisdiction, p.valid_from)):
        rows.append({"id": item.id, "version": item.version, "jurisdiction": item.jurisdiction,
                     "valid_from": format_ts(item.valid_from),
                     "valid_until": format_ts(item.valid_until) if item.valid_until else None,
                     "lookback_days": item.lookback_days, "rules": len(item.rules),
                     "in_force": book.in_force(item.jurisdiction, now) is item, "path": item.path})
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        mark = "  [in force]" if row["in_force"] else ""
        click.echo(f"{row['id']} v{row['version']}  jurisdiction {row['jurisdiction']}  "
                   f"from {row['valid_from']}  lookback {row['lookback_days']} d  "
                   f"{row['rules']} rules{mark}")


def _list_published(broker: str, now: int, as_json: bool) -> None:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    from .engine.timeutil import format_ts
    from .policy_tools import POLICIES_TOPIC, read_publication

    _check_broker(broker)
    latest: dict[str, dict[str, Any]] = {}
    try:
        from .security import from_env

        consumer = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False,
                                 consumer_timeout_ms=2000, **from_env().kafka_python())
        try:
            parts = [TopicPartition(POLICIES_TOPIC, p)
                     for p in sorted(consumer.partitions_for_topic(POLICIES_TOPIC) or ())]
            if parts:
                consumer.assign(parts)
                consumer.seek_to_beginning(*parts)
                end = consumer.end_offsets(parts)
                deadline = time.monotonic() + 60
                while any(consumer.position(tp) < end[tp] for tp in parts):
                    if time.monotonic() > deadline:
                        fail(f"{POLICIES_TOPIC} at {broker} did not deliver its records within 60 s")
                    for messages in consumer.poll(timeout_ms=1000).values():
                        for message in messages:
                            try:
                                loaded = read_publication(message.value or b"")
                                value = orjson.loads(message.value)
                            except PolicyError as exc:
                                note(f"offset {message.offset}: ignored ({exc})")
                                continue
                            latest[loaded.id] = {**{k: value[k] for k in (
                                "id", "version", "jurisdiction", "valid_from", "published_at",
                                "published_by")}, "offset": message.offset,
                                "state": "scheduled" if loaded.valid_from > now else "effective"}
        finally:
            consumer.close()
    except KafkaError as exc:
        fail(f"cannot read {POLICIES_TOPIC} at {broker}: {exc}")
    rows = sorted(latest.values(), key=lambda r: (r["jurisdiction"], r["valid_from"]))
    if as_json:
        _print_json(rows)
        return
    if not rows:
        click.echo(f"nothing published on {POLICIES_TOPIC} (as of {format_ts(now)})")
    for row in rows:
        click.echo(f"{row['id']} v{row['version']}  jurisdiction {row['jurisdiction']}  from "
                   f"{row['valid_from']}  [{row['state']}]  published {row['published_at']} "
                   f"by {row['published_by']}")


@policy.command("show")
@click.argument("file")
@JSON_OPTION
def policy_show(file: str, as_json: bool) -> None:
    """Say what a policy does, rule by rule, in words (first matching arrival rule wins)."""
    from .policy_tools import describe_rule, describe_window, policy_document

    loaded = _policy_file(file)
    if as_json:
        _print_json(policy_document(loaded))
        return
    console = _console()
    console.print(f"[bold]{loaded.id} v{loaded.version}[/]: {_styled(loaded.title.get('en', ''), None)}")
    console.print(f"jurisdiction {_area_label(loaded.jurisdiction)}, in force {describe_window(loaded)}, "
                  f"lookback {loaded.lookback_days} days")
    for number, rule in enumerate(loaded.rules, start=1):
        console.print(f"{number:>2}. [bold]{rule.id}[/]: {_styled(describe_rule(rule), None)}")


@policy.command("diff")
@click.argument("old")
@click.argument("new")
@JSON_OPTION
@click.option("--exit-code", is_flag=True, help="Exit 4 when the policies differ (like git diff).")
def policy_diff(old: str, new: str, as_json: bool, exit_code: bool) -> None:
    """What changes from OLD to NEW, rule by rule, in words.

    \b
    Rules are paired by id, else by the same trigger and condition (a renamed rule).
    Example:
      checkpoint-streams policy diff streams/policies/taiyuan-2022-03-28.yaml \\
                                     streams/policies/taiyuan-2022-08-20.yaml
    """
    from .policy_tools import diff_policies

    result = diff_policies(_policy_file(old), _policy_file(new))
    if as_json:
        _print_json(result.to_json())
    else:
        console = _console()
        console.print(f"[bold]{result.old.id} v{result.old.version} -> {result.new.id} "
                      f"v{result.new.version}[/]")
        style = {"added": "green", "removed": "red", "changed": "yellow", "decides": "yellow",
                 "moved": "magenta", "policy": "bold"}
        sign = {"added": "+", "removed": "-", "changed": "~", "decides": "~", "moved": "↕", "policy": "*"}
        from rich.markup import escape

        for change in result.changes:
            colour, mark = style[change.kind], sign[change.kind]
            if change.kind == "changed":
                renamed = f" (was {change.old})" if change.old and change.old != change.rule else ""
                console.print(f"[{colour}]{mark} {change.rule}{renamed}[/]")
                for detail in change.details:
                    console.print(f"    {escape(detail)}")
                continue
            head = f"{change.rule}: " if change.rule and change.kind == "decides" else ""
            console.print(f"[{colour}]{mark} {escape(head + change.words)}[/]")
        if result.unchanged:
            console.print(f"= unchanged: {', '.join(result.unchanged)}")
        if not result.changes:
            console.print("no differences")
    if exit_code and result.differs:
        sys.exit(EXIT_DIFFERENT)


@policy.command("backtest")
@click.argument("new")
@click.argument("recording")
@POLICIES_OPTION
@click.option("--from", "effective_from", metavar="TIME", callback=_time_option,
              help="Treat NEW as in force from TIME [default: the recording's first event, "
                   "when NEW starts later].")
@click.option("--until", metavar="TIME", callback=_time_option,
              help="Pass event time up to TIME at the end (fires later releases and test days).")
@click.option("--examples", default=3, show_default=True, type=click.IntRange(min=0),
              help="Persons to name per row.")
@JSON_OPTION
@click.option("--exit-code", is_flag=True, help="Exit 4 when anyone would be treated differently.")
def policy_backtest(new: str, recording: str, policy_dir: Path | None, effective_from: int | None,
                    until: int | None, examples: int, as_json: bool, exit_code: bool) -> None:
    """Replay RECORDING under the policies in force and under NEW: who would get a
    different code, by rule.

    \b
    NEW is tested as if it had been in force for its jurisdiction throughout the
    recording: it is back-dated to the first event (or --from), and the policies of
    its jurisdiction it would supersede are set aside. Per person, the strictest code
    any control gave them is compared (colour, mark and measure).
    Example:
      checkpoint-streams policy backtest new.yaml tests/scenarios/taiyuan-0820.jsonl
    """
    from .policy_tools import backtest

    candidate = _policy_file(new)
    book = _policies(policy_dir)
    records, dead = _recording(recording)
    with _progress(2 * len(records), "backtest") as advance:
        result = backtest(records, book, candidate, until=until, effective_from=effective_from,
                          dead_letters=len(dead), progress=advance)
    if as_json:
        _print_json(result.to_json())
    else:
        _print_backtest(result, recording, examples)
    if exit_code and result.differences():
        sys.exit(EXIT_DIFFERENT)


def _print_backtest(result: Any, recording: str, examples: int) -> None:
    from rich.table import Table

    from .engine.timeutil import format_ts

    console = _console()
    summary = result.to_json()
    replaced = ", ".join(result.replaced) if result.replaced else "nothing"
    console.print(f"[bold]backtest {result.new.id} v{result.new.version}[/] on {_styled(recording, None)}: "
                  f"{summary['inputs']} inputs, {summary['persons']} persons")
    console.print(f"in force from {format_ts(result.effective_from)} for {result.new.jurisdiction} "
                  f"(sets aside: {replaced})")
    console.print(f"[bold red]{summary['different_code']}[/] would get a different code, "
                  f"[yellow]{summary['different_measure_only']}[/] the same code with a different measure, "
                  f"{summary['unchanged']} unchanged "
                  f"(outputs {summary['outputs']['old']} -> {summary['outputs']['new']})")
    rows = [r for r in result.by_rule(examples)]
    if not rows:
        return
    grid = Table(title="by rule", title_justify="left")
    for column in ("persons", "old rule", "old code", "new rule", "new code", "differs in", "for example"):
        grid.add_column(column, justify="right" if column == "persons" else "left")
    for row in rows:
        what = "code" if row["code_differs"] else "measure"
        grid.add_row(str(row["persons"]), row["old_rule"] or "—", _code_label(row["old_code"]),
                     row["new_rule"] or "—", _code_label(row["new_code"]), what,
                     ", ".join(row["examples"]))
    console.print(grid)


def _code_label(label: str) -> str:
    colour, _, rest = label.partition(" ")
    return _styled(colour, COLOUR_STYLE.get(colour)) + (f" {rest}" if rest else "")


@policy.command("publish")
@click.argument("file")
@BROKER_OPTION
@click.option("--by", "published_by", default=lambda: os.environ.get("USER") or "operator",
              show_default="$USER", help="Who publishes (kept in the message, for the audit).")
@click.option("--dry-run", is_flag=True, help="Validate and print the message; send nothing.")
@JSON_OPTION
def policy_publish(file: str, broker: str, published_by: str, dry_run: bool, as_json: bool) -> None:
    """Schedule a policy: send it to the workers through the checkpoint.policies topic.

    \b
    The file is validated and sent self-contained (rule sets inlined), keyed by its
    id (schemas/policy-document.schema.json). Running workers add it at once and
    switch to it at its valid_from, with no restart: the metric
    checkpoint_policy_in_force_info and the `policy` field of every later event show
    it. A newer version of the same id replaces the older one.
    Example:
      checkpoint-streams policy publish new.yaml --by operator-0042
    """
    from .engine.timeutil import format_ts
    from .policy_tools import POLICIES_TOPIC, publication, read_publication

    loaded = _policy_file(file)
    now = int(time.time() * 1000)
    message = publication(loaded, published_by, now)
    try:
        read_publication(message)  # exactly what every worker will check
    except PolicyError as exc:
        fail(str(exc))
    if dry_run:
        _print_json(message)
        return
    from kafka.errors import KafkaError

    from .admin import BrokerUnreachable, create_topics, producer

    _check_broker(broker)
    try:
        create_topics(broker)
        sender = producer(broker)
        try:
            sent = sender.send(POLICIES_TOPIC, key=loaded.id.encode(),
                               value=orjson.dumps(message)).get(timeout=30)
            sender.flush()
        finally:
            sender.close()
    except (BrokerUnreachable, KafkaError) as exc:
        fail(f"could not publish to {broker}: {exc}")
    outcome = {"published": loaded.ref(), "topic": POLICIES_TOPIC, "partition": sent.partition,
               "offset": sent.offset, "valid_from": format_ts(loaded.valid_from),
               "scheduled": loaded.valid_from > now}
    if as_json:
        _print_json(outcome)
        return
    click.echo(f"published {loaded.id} v{loaded.version} to {POLICIES_TOPIC} "
               f"(partition {sent.partition}, offset {sent.offset})")
    if loaded.valid_from > now:
        hours = (loaded.valid_from - now) / 3_600_000
        click.echo(f"workers switch to it at {format_ts(loaded.valid_from)} (in {hours:.1f} h)")
    else:
        note(f"note: valid_from {format_ts(loaded.valid_from)} has passed: workers apply it to "
             "inputs from now on; decisions already made are not revisited")


# ------------------------------------------------------------------------ broker
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


# ---------------------------------------------------------------------------- privacy
@main.command("person-ref")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the deployment key (default $CHECKPOINT_PERSON_KEY_FILE, "
                   "or the key itself in $CHECKPOINT_PERSON_KEY).")
@click.option("--check", is_flag=True, help="Refuse lines that are not valid resident ID numbers.")
def person_ref_cmd(key_file: Path | None, check: bool) -> None:
    """Turn identity numbers (stdin, one a line) into person references (stdout).

    \b
    What edge scanners run before anything enters a topic: HMAC-SHA256 with the
    deployment key, base32. The numbers never leave this process, and errors
    never echo them.
      checkpoint-streams generate-key > /secure/person.key
      echo 110101199003077777 | checkpoint-streams person-ref --key-file /secure/person.key
    """
    from . import privacy

    args = ["person-ref", *(["--key-file", str(key_file)] if key_file else []),
            *(["--check"] if check else [])]
    sys.exit(privacy.main(args))


@main.command("generate-key")
def generate_key_cmd() -> None:
    """Print a new random deployment key for person references (keep it secret)."""
    from . import privacy

    sys.exit(privacy.main(["generate-key"]))


if __name__ == "__main__":  # pragma: no cover
    main()
