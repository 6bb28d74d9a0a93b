"""`lag`: consumer-group lag as the broker sees it, per group, topic and partition.

The local broker ships no Kafka scripts (no `kafka-consumer-groups.sh`), so this is what
an operator runs instead: the committed offsets of a group (`list_group_offsets`, the
OffsetFetch API) against each partition's end offset (ListOffsets), with the same
broker security settings as every other command (`streams.security`).

A group of this project (`checkpoint-streams`, or `<namespace>.checkpoint-streams`) is
also reported on the partitions of the topics its workers consume where it has never
committed: a worker starts those from the beginning of the log, so their lag is the
whole partition (`committed` is null). Other groups are reported on the partitions they
committed, as Kafka's own tool does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import click

from .common import (
    BROKER_OPTION,
    EXIT_NOT_FOUND,
    JSON_OPTION,
    _check_broker,
    fail,
)
from .group import main
from .render import _console, _print_json, _styled

#: a group of this project: the app id, optionally in a namespace (`streams.settings`)
_OWN_GROUP = re.compile(r"^(?:(?P<namespace>[A-Za-z0-9][A-Za-z0-9_-]{0,47})\.)?checkpoint-streams$")


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # None: the group never committed on this partition
    end: int
    lag: int

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "committed": self.committed,
                "end": self.end, "lag": self.lag}


@dataclass(frozen=True)
class GroupLag:
    group: str
    state: str
    members: int
    partitions: list[PartitionLag] = field(default_factory=list)

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "state": self.state, "members": self.members,
                "lag": self.lag, "partitions": [p.to_json() for p in self.partitions]}


def consumed_topics(group: str) -> list[str]:
    """The topics a worker of this project's group `group` consumes ([] for other groups)."""
    from .. import topics as T
    from ..settings import Settings

    found = _OWN_GROUP.match(group)
    if found is None:
        return []
    deployment = Settings(namespace=found["namespace"] or "")
    return [deployment.topic(name) for name in (*T.PARTITION_TOPICS, T.REPORT_PARTS)]


def partition_lags(committed: Mapping[tuple[str, int], int], starts: Mapping[tuple[str, int], int],
                   ends: Mapping[tuple[str, int], int],
                   uncommitted: Iterable[tuple[str, int]] = ()) -> list[PartitionLag]:
    """Lag per partition: the messages still to read after the committed offset (an offset
    below the log start counts from the log start, where the consumer resumes), and for
    `uncommitted` partitions without a commit the whole log."""
    rows = []
    for tp in sorted(set(committed) | set(uncommitted)):
        end, start = ends[tp], starts.get(tp, 0)
        done = committed.get(tp)
        lag = end - max(done if done is not None else start, start)
        rows.append(PartitionLag(tp[0], tp[1], done, end, max(lag, 0)))
    return rows


def read_lag(broker: str, groups: list[str] | None) -> tuple[list[GroupLag], list[str]]:
    """Each group's lag (every group on the broker when `groups` is None), and the groups
    asked for that the broker does not know."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec
    from kafka.errors import UnsupportedVersionError

    from ..admin import admin_client

    admin = admin_client(broker)
    try:
        if groups is None:
            groups = sorted({g["group_id"] for g in admin.list_groups()})
        if not groups:
            return [], []
        described = admin.describe_groups(groups)
        try:
            offsets = admin.list_group_offsets({group: None for group in groups})
        except UnsupportedVersionError:  # a broker before Kafka 3.0: one group a request
            offsets = {group: admin.list_group_offsets({group: None})[group] for group in groups}
        existing = set(admin.list_topics())  # a deleted topic has no end offset
        wanted = sorted({t for group in groups for t in consumed_topics(group) if t in existing})
        counts = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(wanted)} if wanted else {}
        own = {group: [TopicPartition(t, p) for t in consumed_topics(group) if t in counts
                       for p in range(counts[t])] for group in groups}
        every = {tp for group in groups for tp in (*offsets.get(group, {}), *own[group])
                 if tp.topic in existing}
        ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in every}) if every else {}
        starts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in every}) if every else {}
    finally:
        admin.close()
    found, missing = [], []
    for group in groups:
        info = described.get(group) or {}
        done = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.get(group, {}).items()
                if tp in ends and meta.offset >= 0}
        state = info.get("group_state") or "Unknown"
        if state == "Dead" and not offsets.get(group):
            missing.append(group)
            continue
        rows = partition_lags(done, {(tp.topic, tp.partition): o.offset for tp, o in starts.items()},
                              {(tp.topic, tp.partition): o.offset for tp, o in ends.items()},
                              [(tp.topic, tp.partition) for tp in own[group]])
        found.append(GroupLag(group, state, len(info.get("members") or ()), rows))
    return found, missing


@main.command()
@BROKER_OPTION
@click.option("--group", "groups", multiple=True, metavar="GROUP",
              help="A consumer group (repeatable) [default: this deployment's, "
                   "<$CHECKPOINT_NAMESPACE.>checkpoint-streams].")
@click.option("--all-groups", is_flag=True, help="Every consumer group on the broker.")
@JSON_OPTION
def lag(broker: str, groups: tuple[str, ...], all_groups: bool, as_json: bool) -> None:
    """Consumer-group lag from the broker: per group, topic and partition, the committed
    offset, the end offset and the messages still to read.

    \b
    This deployment's workers (the group of $CHECKPOINT_NAMESPACE):
      checkpoint-streams lag
    Any group, or all of them, for a script:
      checkpoint-streams lag --group staging.checkpoint-streams --json
      checkpoint-streams lag --all-groups
    Partitions of the workers' topics where the group never committed count whole
    (the workers start there from the beginning). Exit code 3 when a group asked
    for is not on the broker.
    """
    from kafka.errors import KafkaError

    from ..admin import BrokerUnreachable
    from ..security import SecurityConfigError
    from ..settings import Settings, SettingsError

    if all_groups and groups:
        raise click.UsageError("give --group or --all-groups, not both")
    try:
        wanted: list[str] | None = None if all_groups else list(dict.fromkeys(groups)) or [
            Settings.from_env().app_id]
    except SettingsError as exc:
        fail(str(exc))
    _check_broker(broker)
    try:
        found, missing = read_lag(broker, wanted)
    except (SecurityConfigError, BrokerUnreachable) as exc:
        fail(str(exc))
    except KafkaError as exc:
        fail(f"cannot read consumer groups at {broker}: {type(exc).__name__}: {exc}")
    if as_json:
        _print_json({"broker": broker, "groups": [g.to_json() for g in found]})
    elif found or all_groups:
        _print_lag(found, broker)
    if missing:
        hint = " (no worker of it has joined or committed yet)" if not groups and not all_groups else ""
        fail(f"no consumer group {', '.join(missing)} at {broker}{hint}", EXIT_NOT_FOUND)


def _print_lag(found: list[GroupLag], broker: str) -> None:
    from rich.table import Table

    console = _console()
    if not found:
        console.print(f"no consumer groups at {broker}")
    for group in found:
        style = "bold red" if group.lag else "green"
        grid = Table(title=f"{_styled(group.group, 'bold')}  {group.state}, {group.members} members, "
                           f"lag {_styled(str(group.lag), style)}", title_justify="left")
        for column in ("topic", "partition", "committed", "end", "lag"):
            grid.add_column(column, justify="left" if column == "topic" else "right")
        for row in group.partitions:
            grid.add_row(row.topic, str(row.partition), "—" if row.committed is None else str(row.committed),
                         str(row.end), _styled(str(row.lag), "bold red" if row.lag else None))
        console.print(grid)
