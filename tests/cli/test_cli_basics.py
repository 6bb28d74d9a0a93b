"""The command as a whole: help that teaches, one-line errors, exit codes, the `load` plug-in."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli.conftest import REPO, one_line_error

COMMANDS = ["replay", "worker", "topics", "produce", "lag", "status", "areas", "report", "policy",
            "broker"]


def test_help_teaches_the_first_steps_and_lists_every_command(run):
    done = run("--help")
    assert done.returncode == 0
    for phrase in ("make run", "make replay", "checkpoint-streams replay tests/scenarios/z22.jsonl",
                   "Exit codes", "4 differences found"):
        assert phrase in done.stdout
    section = done.stdout.split("Commands:")[1].split("Exit codes")[0]
    listed = [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.strip()]
    assert listed[:len(COMMANDS) + 1] == [*COMMANDS[:4], "load", *COMMANDS[4:]] or listed == COMMANDS


@pytest.mark.parametrize("command", [*COMMANDS, "policy validate", "policy diff", "policy backtest",
                                     "policy publish", "policy list", "policy show", "broker start"])
def test_every_command_has_help_with_substance(run, command):
    done = run(*command.split(), "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: checkpoint-streams " + command in done.stdout
    assert len(done.stdout.splitlines()) >= 4


def test_version(run):
    done = run("--version")
    assert done.returncode == 0 and "checkpoint-streams" in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["frobnicate"], "error: No such command 'frobnicate'. (see: checkpoint-streams --help)"),
    (["replay", "--frob", "x"], "error: No such option: --frob (see: checkpoint-streams replay --help)"),
    (["report"], "error: Missing argument 'RECORDING'. (see: checkpoint-streams report --help)"),
    (["policy", "diff", "only-one.yaml"], "error: Missing argument 'NEW'. (see: checkpoint-streams policy diff --help)"),
    (["produce", "x.jsonl", "--rate", "-3"], "error: Invalid value for '--rate'"),
])
def test_a_wrong_command_line_is_one_line_and_exit_2(run, args, message):
    done = run(*args)
    assert done.returncode == 2
    assert one_line_error(done).startswith(message)


def test_missing_files_are_one_line_and_exit_1(run, tmp_path):
    for args in (["replay", "/no/such.jsonl"], ["report", "/no/such.jsonl"],
                 ["produce", "/no/such.jsonl"], ["policy", "show", "/no/such.yaml"],
                 ["status", "p-00000001", "--recording", "/no/such.jsonl"],
                 ["replay", str(tmp_path)]):
        done = run(*args)
        assert done.returncode == 1, args
        line = one_line_error(done)
        assert "/no/such" in line or "is a directory" in line


def test_load_comes_from_streams_load_when_present(run):
    done = run("--help")
    if (REPO / "streams" / "load.py").exists():
        assert "\n  load " in done.stdout
        assert run("load", "--help").returncode == 0
    else:
        assert "\n  load " not in done.stdout


def test_the_command_works_without_streams_load():
    """`load` is registered only if its module imports: block it and the rest still works."""
    code = ("import sys; sys.modules['streams.load'] = None\n"
            "import importlib.util as u; real = u.find_spec\n"
            "u.find_spec = lambda name, *a: None if name == 'streams.load' else real(name, *a)\n"
            "from streams.cli import main; main(['--help'])")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "replay" in done.stdout and "\n  load " not in done.stdout


def test_a_broken_load_module_is_reported_not_fatal():
    code = ("import sys, types; broken = types.ModuleType('streams.load')\n"
            "def boom(name): raise RuntimeError('cannot start')\n"
            "broken.__getattr__ = boom; sys.modules['streams.load'] = broken\n"
            "from streams.cli import main; main(sys.argv[1:])")
    helped = subprocess.run([sys.executable, "-c", code, "--help"], cwd=REPO, capture_output=True, text=True)
    assert helped.returncode == 0 and "replay" in helped.stdout
    done = subprocess.run([sys.executable, "-c", code, "load"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 1
    assert one_line_error(done) == "error: load is unavailable (RuntimeError: cannot start)"
