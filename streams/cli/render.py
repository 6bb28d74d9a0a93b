"""How results look to people: coloured tables in a terminal, plain when piped. Logic
lives elsewhere (the engine, `streams.status`, `streams.reports`, `streams.policy_tools`);
this module only prints what they return."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import orjson


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
    from .. import areas

    name = areas.full_name(code) if areas.is_known(code) else None
    return f"{code} {name}" if name else code



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


def _print_reports(reports: list[dict[str, Any]], zeros: bool, within: str | None) -> None:
    from rich.table import Table

    from ..reports import AreaDay

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



def _print_backtest(result: Any, recording: str, examples: int) -> None:
    from rich.table import Table

    from ..engine.timeutil import format_ts

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

