"""`policy`: validate, show, list, diff, backtest and publish policies."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson

from ..engine.policy import PolicyError, load_policy
from .common import (
    BROKER_OPTION,
    EXIT_DIFFERENT,
    EXIT_FAILED,
    JSON_OPTION,
    POLICIES_OPTION,
    _check_broker,
    _policies,
    _policy_file,
    _progress,
    _recording,
    _time_option,
    fail,
    namespaced,
    note,
)
from .group import main
from .render import _area_label, _console, _print_backtest, _print_json, _styled


@main.group()
def policy() -> None:
    """Validate, read, compare, back-test and publish policies.

    \b
    The life of a new policy (docs/policies.md), with the example in docs/examples:
      P=docs/examples/taiyuan-2022-09-01.yaml
      checkpoint-streams policy validate $P
      checkpoint-streams policy diff streams/policies/taiyuan-2022-08-20.yaml $P
      checkpoint-streams policy backtest $P tests/scenarios/taiyuan-0820.jsonl
      checkpoint-streams policy publish $P      # workers switch at its valid_from
    """


@policy.command("validate")
@click.argument("files", nargs=-1, required=True)
@JSON_OPTION
def policy_validate(files: tuple[str, ...], as_json: bool) -> None:
    """Check policy files against the policy schema and the engine's rules, and run the
    test cases next to each (`<policy>.cases.yaml`, docs/policies.md).

    Every file is checked; the exit code is 1 when any is invalid or any case fails. A
    cases file given on its own is run with the policy beside it; a directory stands for
    every policy in it (rule sets are checked through the policies that include them):
      checkpoint-streams policy validate streams/policies
    """
    from ..policy_cases import check_policy_file, is_cases_file, policy_files, policy_of_cases

    results = []
    seen: set[Path] = set()
    for path in (found for name in files for found in policy_files(Path(name))):
        if is_cases_file(path):
            path = policy_of_cases(path)
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        try:
            if not path.is_file():
                raise PolicyError(f"no such policy file: {path}" if not path.exists()
                                  else f"{path} is a directory, not a policy file")
            loaded = load_policy(path)
            cases = check_policy_file(path, loaded)
        except PolicyError as exc:
            results.append({"file": str(path), "ok": False, "error": str(exc)})
            if not as_json:
                click.secho(f"error: {exc}", fg="red", err=True)
            continue
        result = {"file": str(path), "ok": cases is None or cases.ok, "policy": loaded.ref(),
                  "rules": len(loaded.rules), "jurisdiction": loaded.jurisdiction,
                  "lookback_days": loaded.lookback_days,
                  "cases": cases.to_json() if cases is not None else None}
        results.append(result)
        if as_json:
            continue
        header = (f"{path}: {loaded.id} v{loaded.version}, {len(loaded.rules)} rules, "
                  f"jurisdiction {loaded.jurisdiction}, lookback {loaded.lookback_days} days")
        if cases is None:
            click.echo(f"ok: {header}; no test cases (docs/policies.md, 'Test cases')")
            continue
        passed = len(cases.results) - len(cases.failed)
        words = f"{passed}/{len(cases.results)} cases pass"
        if cases.ok:
            click.echo(f"ok: {header}; {words}")
        else:
            click.secho(f"failed: {header}; {words}", fg="red", err=True)
        for failed in cases.failed:
            click.secho(f"  case {failed.name}: " + "; ".join(failed.problems), fg="red", err=True)
        if cases.uncovered:
            note(f"  rules with no case: {', '.join(cases.uncovered)}")
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
    from ..engine.timeutil import format_ts

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

    from ..engine.timeutil import format_ts
    from ..policy_tools import read_publication
    from ..topics import POLICIES

    POLICIES_TOPIC = namespaced(POLICIES)

    _check_broker(broker)
    latest: dict[str, dict[str, Any]] = {}
    try:
        from ..security import from_env

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
    from ..policy_tools import describe_rule, describe_window, policy_document

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
    from ..policy_tools import diff_policies

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
    from ..policy_tools import backtest

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
    from ..engine.timeutil import format_ts
    from ..policy_tools import publication, read_publication
    from ..topics import POLICIES

    POLICIES_TOPIC = namespaced(POLICIES)

    from ..policy_cases import check_policy_file

    loaded = _policy_file(file)
    try:
        cases = check_policy_file(Path(file), loaded)
    except PolicyError as exc:
        fail(str(exc))
    if cases is not None and not cases.ok:
        fail(f"refused: {len(cases.failed)} of {len(cases.results)} test cases of {loaded.id} fail "
             f"({', '.join(c.name for c in cases.failed)}); see `checkpoint-streams policy "
             f"validate {file}`")
    if cases is None:
        note(f"note: {file} has no test cases next to it (docs/policies.md, 'Test cases')")
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

    from ..admin import BrokerUnreachable, create_topics, producer

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

