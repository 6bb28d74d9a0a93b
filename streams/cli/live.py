"""The live commands: `worker`, `topics`, `produce`, and the local `broker`."""

from __future__ import annotations

import os
import subprocess
import sys

import click

from .common import BROKER_OPTION, BROKER_SCRIPT, _check_broker, _input_file, fail, namespaced, note
from .group import main


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
    here override it. Several workers with the same CHECKPOINT_NAMESPACE form one
    consumer group and split the partitions. The worker serves /health, /ready,
    /metrics, /areas and /persons/{person} on --web-port (what `status` and
    `areas` read).
    """
    os.environ["CHECKPOINT_BROKER"] = broker
    from ..codec import original_mode

    try:
        original_mode()  # a dead-letter setting that cannot work fails now, not at the first one
    except ValueError as exc:
        fail(str(exc))
    if web_port is not None:
        os.environ["CHECKPOINT_WEB_PORT"] = str(web_port)
    if store is not None:
        os.environ["CHECKPOINT_STORE"] = f"{store}://"
    from ..settings import Settings, SettingsError

    try:
        settings = Settings.from_env()  # a bad setting is one line now, not a traceback later
    except SettingsError as exc:
        fail(str(exc))
    if create_topics:
        from ..admin import BrokerUnreachable
        from ..admin import create_topics as create

        _check_broker(broker)
        try:
            create(broker)
        except BrokerUnreachable as exc:
            fail(f"{exc} (start one with: checkpoint-streams broker start)")
    from ..app import app

    sys.argv = ["checkpoint-streams", "worker", "--loglevel", loglevel,
                "--web-port", str(settings.web_port), "--web-bind", settings.web_bind,
                "--web-host", settings.web_host, *ctx.args]
    app.main()


@main.command("topics")
@BROKER_OPTION
def topics_cmd(broker: str) -> None:
    """Create every topic of the contract (partitions and compaction from asyncapi.yaml)."""
    from ..admin import BrokerUnreachable, create_topics

    prefix = namespaced("")  # a bad namespace setting is one line, before the broker
    _check_broker(broker)
    try:
        created = create_topics(broker, prefix=prefix)
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

    from ..admin import BrokerUnreachable, produce_records
    from ..recording import by_event_time, read_jsonl
    from ..recording import rebase as shift

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
        for _ in tqdm(produce_records(broker, records, rate=rate, prefix=namespaced("")),
                      total=len(records),
                      unit="rec", disable=None, desc="produce"):
            pass
    except BrokerUnreachable as exc:
        fail(str(exc))


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

