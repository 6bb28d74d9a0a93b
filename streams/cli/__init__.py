"""The `checkpoint-streams` command: one entry point for operators, CI and newcomers.

Shell only: every decision is made by the pipeline core (`streams.pipeline`) and the
engine, the policy tools (`streams.policy_tools`), the report aggregator
(`streams.reports`) and a person's status (`streams.status`); this package reads files,
talks to Kafka and to the workers' web views, and prints (`render`). One module per
command group.

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

from . import edge, lag, live, lookup, policy, replay, report  # noqa: F401 - the commands
from .common import fail, note
from .group import main

__all__ = ["fail", "main", "note"]
