"""The top-level `checkpoint-streams` group."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import click

from .common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, fail

EXIT_CODES_HELP = """\b
Exit codes: 0 done; 1 failed (bad or missing file, invalid policy, no broker or
worker answering); 2 wrong command line; 3 not found; 4 differences found
(--exit-code); 130 interrupted."""
#: below this many records a progress bar would only flicker


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

    #: the order `--help` lists the commands in (the rest after them)
    ORDER: ClassVar[tuple[str, ...]] = ("replay", "worker", "topics", "produce", "lag", "status",
                                        "areas", "report", "policy", "broker", "person-ref",
                                        "generate-key")

    def list_commands(self, ctx: click.Context) -> list[str]:
        order = {name: number for number, name in enumerate(self.ORDER)}
        names = sorted(self.commands, key=lambda name: order.get(name, len(order)))
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
    Live:      broker start|stop|status, topics, worker, produce FILE, load, lag
    Look up:   status PERSON, areas                (--worker URL or --recording FILE)
    Policies:  policy validate|show|list|diff|backtest|publish
    Reports:   report RECORDING --day 2022-08-19 [--area 1407]

    Every command has --help with examples; docs/operations.md is the reference.
    """

