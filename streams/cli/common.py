"""What every command shares: exit codes, one-line errors, options, and reading inputs
(recordings, policies, times) and the workers' views."""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
import orjson

from ..engine.policy import POLICY_DIR, Policy, PolicyBook, PolicyError, load_policy, load_policy_dir

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
BROKER_SCRIPT = REPO_ROOT / "deploy" / "broker.sh"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_DIFFERENT, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
#: below this many records a progress bar would only flicker
PROGRESS_MIN = 2_000


# ------------------------------------------------------------------------ errors
def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """One line on stderr and exit: the way every expected failure ends."""
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def note(message: str) -> None:
    click.secho(message, fg="bright_black", err=True)


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
    from ..engine.timeutil import parse_ts

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
    from ..engine.timeutil import parse_date

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


def _recording(path_text: str) -> tuple[list[Any], list[Any]]:
    """Records (processing order) and unreadable lines of a JSONL recording."""
    from ..replay import read_recording

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


def _retention_grace() -> int | None:
    """The deployment's retention grace ($CHECKPOINT_RETENTION_GRACE_DAYS), so that a
    look-up in a recording forgets a person when the workers would (docs/privacy.md)."""
    from ..settings import Settings, SettingsError

    try:
        days = Settings.from_env().retention_grace_days
    except SettingsError as exc:
        fail(str(exc))
    return None if days < 0 else days * 86_400_000


def _replay_state(path_text: str, until: int | None, book: PolicyBook) -> Any:
    """A finished replay of a recording (for status and areas), with a progress bar."""
    from ..replay import Replay

    records, _ = _recording(path_text)
    run = Replay(book, retention_grace=_retention_grace())
    with _progress(len(records), "replay") as advance:
        for record in records:
            run.feed(record)
            advance(1)
    if until is not None:
        run.advance_to(until)
    return run



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



def namespaced(name: str) -> str:
    """A contract topic's name on the broker, in this deployment's namespace
    ($CHECKPOINT_NAMESPACE, as the workers use it)."""
    from ..settings import Settings, SettingsError

    try:
        return Settings.from_env().topic(name)
    except SettingsError as exc:
        fail(str(exc))
