"""The bench's per-record CPU budget: py-spy's stacks sorted into categories, and the row
the Markdown report prints (issue 17: Faust, engine, gate, encoding, state, outputs,
metrics, logs, at backlog and at 50 % of max)."""

from __future__ import annotations

from pathlib import Path

from bench.profile import categorise
from bench.run import markdown

FRAME = "{func} (/work/main/{path}:{line})"


def stack(*frames: tuple[str, str]) -> str:
    head = 'process 1:"python -m streams.cli worker";thread (0x7f):'
    return head + ";".join(FRAME.format(func=f, path=p, line=10) for f, p in frames)


def test_a_sample_counts_under_its_innermost_kind_of_work(tmp_path: Path) -> None:
    agent = ("_execute_actor", ".venv/lib/python3.11/site-packages/faust/agents/agent.py")
    shell = ("_decide_batch", "streams/live.py")
    lines = [
        stack(agent, shell, ("process", "streams/engine/evaluate.py")) + " 6",
        stack(agent, shell, ("encode", "streams/codec.py")) + " 1",
        stack(agent, shell, ("check", "streams/codec.py")) + " 1",
        stack(agent, shell, ("info", "/usr/lib/python3.11/logging/__init__.py")) + " 1",
        stack(agent, shell) + " 1",
        "not a stack line",
    ]
    path = tmp_path / "stacks.txt"
    path.write_text("\n".join(lines) + "\n")
    shares = dict(categorise(path))
    assert shares == {"engine and pipeline core": 0.6, "encoding (outputs, dead letters)": 0.1,
                      "input gate": 0.1, "logs": 0.1, "shell bookkeeping": 0.1}


def test_the_report_prints_the_budget_in_microseconds_per_record() -> None:
    run = {"done": 8000, "what": "scans", "cpu_us_each": 600.0,
           "us_by_category": {"engine and pipeline core": 120.0, "Faust stream/agent": 300.0,
                              "logs": 0.4}}
    result = {"started": "20261204T090000", "quick": True,
              "machine": {"cpus": 2, "load_before": "0.1", "commit": "abc"},
              "sections": {"budget": {"backlog": run, "half_rate": {**run, "what": "scans at 800/s"},
                                      "section_seconds": 30.0, "load_1min": [0.1, 0.2]}}}
    table = markdown(result)
    assert ("| CPU budget per record, backlog | 600 µs | Faust stream/agent 300; "
            "engine and pipeline core 120 (µs; 8,000 scans, py-spy sampling included) |") in table
    assert "| CPU budget per record, 50 % of max | 600 µs |" in table
